// What the rest of the relay uses of limits/: other folders import it from here only.
export { ConnectionLimits, type Overrun } from './connection-limits.js'
export { coalesceQuestions, costOf, costOfBytes } from './message-cost.js'
export { gateOf, type ReadGate } from './read-gate.js'
export { ReceiveBudget } from './receive-budget.js'
export { BucketsByKey } from './token-bucket.js'
export { RequestLimiter } from './request-limiter.js'
