#!/usr/bin/env node
// Launcher for the TypeScript CLI: tsx compiles on the fly, so `npx opentrail` works right
// after `npm ci` with no build step.
// The AWS SDK warns on every start under Node 20 that its 2027 releases will need Node 22; the
// README says so once, and the CLI output stays readable.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
require('tsx/cjs');
require('./opentrail.ts');
