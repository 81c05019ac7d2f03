#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's require hook.
require('tsx/cjs');
require('../engine/src/cli/entry.ts');
