export { DEFAULT_TIMEOUT_MS, nextEvent, on, waitUntil, type Subscribe, type WaitOptions } from './wait-for.js'
export { GEORELAY_BIN, startRelayProcess, type RelayProcess, type StartRelayOptions } from './relay-process.js'
export { connectProvider, destroyProvider, waitForText, waitSynced } from './y-websocket-client.js'
export { startTestRelay, type TestRelayOptions } from './test-relay.js'
