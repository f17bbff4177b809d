import { describe, it } from '@jest/globals'
import { MemoryOfflineStore } from '../src/memory-offline-store.js'
import { checksFor, runCheck, trackingFixture } from './offline-store-conformance.js'

describe('MemoryOfflineStore', () => {
  const setup = async () => trackingFixture(false, async () => new MemoryOfflineStore(), async () => {})
  for (const check of checksFor(false)) it(check.name, () => runCheck(check, setup))
})
