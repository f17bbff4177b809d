// What the rest of the relay uses of replication/: other folders import it from here only.
export { ReplicationLog } from './replication-log.js'
export { WriteAcks, regionsNeeded } from './write-acks.js'
