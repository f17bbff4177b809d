// What the rest of the relay uses of docs/: other folders import it from here only.
export { DocRegistry, erasedRefusal } from './doc-registry.js'
export { ErasedDocs } from './erased-docs.js'
export { DocSession, type ForwardedResult, type SessionPlacement, validateMessages } from './doc-session.js'
export { RelayRefusal } from './relay-refusal.js'
