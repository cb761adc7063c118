#!/usr/bin/env node
'use strict';
// Thin launcher: all logic lives in dist/cli.js so it can be tested in-process.
require('./dist/cli.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
