// Integration and end-to-end tests start real emulators and child processes.
jest.setTimeout(120_000);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
