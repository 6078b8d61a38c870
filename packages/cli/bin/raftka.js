#!/usr/bin/env node
// The `raftka` executable. It is a committed file (not build output) so that npm can link the
// bin at install time, before `npm run build` has produced dist/.
import '../dist/main.js';
