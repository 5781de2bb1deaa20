#!/usr/bin/env node
// Launcher for the TypeScript CLI: tsx compiles on the fly, so `npx opentrail` works right
// after `npm ci` with no build step.
require('tsx/cjs');
require('./opentrail.ts');
