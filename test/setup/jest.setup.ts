// Integration and end-to-end tests start real emulators and child processes.
jest.setTimeout(120_000);
