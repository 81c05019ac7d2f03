#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's require hook.
require('tsx/cjs');
require('../engine/src/cli/main.ts')
  .main(process.argv.slice(2))
  .then((code) => {
    if (code >= 0) process.exit(code);
  });
