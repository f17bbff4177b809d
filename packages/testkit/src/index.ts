export { DEFAULT_TIMEOUT_MS, every, nextEvent, on, waitUntil, type Listenable, type Subscribe, type WaitOptions } from './wait-for.js'
export { GEORELAY_BIN, startRelayProcess, type RelayProcess, type StartRelayOptions } from './relay-process.js'
export { connectProvider, destroyProvider, waitForText, waitSynced } from './y-websocket-client.js'
export { docOfStored, readStoredDoc } from './stored-doc.js'
export {
  connectHocuspocus, destroyHocuspocus, hocuspocusSocket, nextAuthFailure, waitHocuspocusSaved, waitHocuspocusSynced,
  type HocuspocusOptions, type HocuspocusSocket, type HocuspocusVersion, type TestHocuspocusProvider,
} from './hocuspocus-client.js'
export { startTestRelay, storeOf, type TestRelayOptions } from './test-relay.js'
export { compareReplicas, setFullCheck, waitForExactSet, type ConvergenceReport, type SetFullReport } from './convergence.js'
export { TEST_MESH_SECRET, TEST_REPLICATION, TestCluster, type ClusterOptions, type ClusterRegion } from './cluster.js'
export { WanSimulator, type DirectionOptions, type DirectionStats, type LinkConditions, type LinkEndpoint, type LossConditions, type WanEvents, type WanSimulatorOptions } from '@georelay/cluster'
export { loadTrace, syntheticTrace, type EditingTrace, type Patch } from './editing-trace.js'
export { measureMesh, type MeshMeasurement } from './measure-mesh.js'
export {
  directionBytesByKind, directionTally, meshBytesBetween, meshBytesByKind, totalBytes, type MeshBytes, type MeshTally,
} from './mesh-bytes.js'
export { CHROMIUM_ARGS, CHROMIUM_PATH, bundleForBrowser, launchChromium, serveStatic, type ChromiumSession, type LaunchChromiumOptions, type StaticFile, type StaticServer } from './chromium.js'
export { capturedPayloads, decodeWsCapture, type CapturedMessage } from './ws-capture.js'
export { recordingSocket, type RecordingSocket } from './recording-socket.js'
export { encodeClientFrame, rawWebSocket, type RawWebSocket } from './raw-websocket.js'
export { POSTGRES_URL_ENV, postgresBinDir, startPostgres, type PostgresServer } from './postgres-server.js'
export { REDIS_SERVER_PATH, startRedis, type RedisServer } from './redis-server.js'
export { startRedisCluster, type RedisClusterServer } from './redis-cluster.js'
export { startRegionNodeProcess, type RegionNodeOptions } from './region-node-process.js'
export { testPostgresUrl, testSchema, type TestSchema } from './test-database.js'
