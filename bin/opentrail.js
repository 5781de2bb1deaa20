#!/usr/bin/env node
// The `opentrail` command. An installed package runs the compiled CLI (dist/bin/opentrail.js);
// it ships no TypeScript and needs no tsx. A checkout of the repository (where
// bin/opentrail.ts sits next to this file) runs the sources through tsx, a dev dependency, so
// the CLI and the e2e tests never run a stale build.
// The AWS SDK warns on every start under Node 20 that its 2027 releases will need Node 22; the
// README says so once, and the CLI output stays readable.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

if (existsSync(join(__dirname, 'opentrail.ts'))) {
  require('tsx/cjs');
  require('./opentrail.ts');
} else {
  require('../dist/bin/opentrail.js');
}
