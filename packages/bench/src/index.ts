export { CONTENDERS, isContenderKind, startContender, type Contender, type ContenderKind, type StartContenderOptions } from './contenders.js'
export { keystrokeUpdates, finalStateOf, applyPatch, type KeystrokeUpdates } from './trace-updates.js'
export { runFanOut, type FanOutOptions, type FanOutResult, type PhaseResult } from './workloads/fan-out.js'
export { distribution, percentile, quantiles, type Distribution } from './stats.js'
export { sampleProcess, ownCpuSeconds, type ProcSample } from './proc-stats.js'
export { runBench, defaultOptions, parseContenders, parseWorkloads, WORKLOADS, type BenchOptions, type Workload } from './run-bench.js'
export { writeReport, markdownReport, goalTable, goalRows, charts, firstSyncTable, type BenchReport, type GoalRow } from './report.js'
export { barChart, distributionChart, type Bar, type Series } from './svg-chart.js'
export { machineInfo, type MachineInfo } from './machine.js'
export { runMemory, type MemoryOptions, type MemoryResult } from './workloads/memory.js'
export { runDurableAck, type DurableAckOptions, type DurableAckResult } from './workloads/durable-ack.js'
export { runFailover, type FailoverResult } from './workloads/failover.js'
export { runRegionNodes, type RegionNodesOptions, type RegionNodesResult, type RegionNodesRun } from './workloads/region-nodes.js'
export { runConvergence, type ConvergenceOptions, type ConvergenceResult } from './workloads/convergence.js'
export { summarizeProfile, formatProfileSummary, type HotSpot, type ProfileSummary } from './cpu-profile.js'
export {
  runFirstSync, syncTimes, type FirstSyncCase, type FirstSyncMode, type FirstSyncOptions, type FirstSyncResult,
  type FirstSyncRun, type FirstSyncServer, type SyncTimes,
} from './workloads/first-sync.js'
