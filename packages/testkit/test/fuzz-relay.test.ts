import { describe, expect, it } from '@jest/globals'
import { FUZZ_ENDPOINTS, formatFuzzSummary, fuzzRelay } from '../src/fuzz-relay.js'

describe('the relay fuzzer', () => {
  it('runs a seeded budget on every endpoint: bad sockets get 4400/4413, the relay and its clients are unharmed', async () => {
    // One socket per endpoint at a time and a frame budget only: the seed fixes every frame sent.
    const summary = await fuzzRelay({ seed: 20261127, frames: 300, concurrency: 1, checkEveryFrames: 100 })
    const report = formatFuzzSummary(summary)
    for (const endpoint of FUZZ_ENDPOINTS) {
      const stats = summary.endpoints[endpoint]
      expect({ endpoint, frames: stats.frames }).toEqual({ endpoint, frames: 300 })
      // Both outcomes occur: frames the relay took, and sockets closed for malformed input…
      expect(stats.accepted).toBeGreaterThan(0)
      expect(stats.closes['4400']).toBeGreaterThan(0)
      // …and no frame got an undocumented code, was taken though invalid, or was refused though valid.
      expect({
        endpoint,
        wrongCodes: stats.wrongCodes,
        acceptedInvalid: stats.acceptedInvalid,
        refusedValid: stats.refusedValid,
        probeTimeouts: stats.probeTimeouts,
        samples: stats.samples,
      }).toEqual({ endpoint, wrongCodes: 0, acceptedInvalid: 0, refusedValid: 0, probeTimeouts: 0, samples: {} })
    }
    expect(summary.endpoints['y-websocket'].closes['4413']).toBeGreaterThan(0)
    expect(summary.endpoints.mux.closes['4413']).toBeGreaterThan(0)
    // A bad message for one mux document is an error for that document; the socket's others go on.
    expect(summary.endpoints.mux.docErrors['4400']).toBeGreaterThan(0)
    expect(summary.endpoints.mux.otherDocsHurt).toBe(0)
    expect(summary.framesTried).toBe(900)
    expect({
      crashes: summary.crashSamples,
      healthFailures: summary.healthFailures,
      syncFailures: summary.syncFailures,
      lost: summary.lost,
      stateChanged: summary.stateChanged,
      unexpectedDocs: summary.unexpectedDocs,
      unreadableDocs: summary.unreadableDocs,
    }).toEqual({
      crashes: [],
      healthFailures: 0,
      syncFailures: 0,
      lost: 0,
      stateChanged: 0,
      unexpectedDocs: [],
      unreadableDocs: [],
    })
    expect(summary.liveWrites).toBeGreaterThanOrEqual(900 / 100)
    expect(report).toMatch(/^seed 20261127, .* 900 frames tried/)
  }, 60_000)
})
