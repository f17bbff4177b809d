#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in ../dist (built by `npm install`'s prepare step).
import { main } from '../dist/cli/cli.js'

main(process.argv.slice(2)).then(code => { process.exitCode = code }, err => {
  process.stderr.write(`georelay: unexpected failure: ${err && err.stack ? err.stack : err}\n`)
  process.exitCode = 1
})
