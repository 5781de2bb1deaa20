// Integration and end-to-end tests start real emulators and child processes.
jest.setTimeout(120_000);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Handlers build their Powertools logger and metrics at module load: keep their JSON lines and
// EMF blobs out of the test output (a test that sets its own values still wins).
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
