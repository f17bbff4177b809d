#!/usr/bin/env node
// Thin launcher: the server is compiled TypeScript in ../dist (built by `npm install`'s prepare step).
import { main } from '../dist/server/main.js'

main(process.argv.slice(2)).then(code => { process.exitCode = code }, err => {
  process.stderr.write(`georelay demo: unexpected failure: ${err && err.stack ? err.stack : err}\n`)
  process.exitCode = 1
})
