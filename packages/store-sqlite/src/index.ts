export { SQLITE_FILE, SqliteStore, type SqliteStoreOptions } from './sqlite-store.js'
export {
  BackupError, type BackupOptions, type BackupProgress, type BackupResult, backupSqliteStore, type RestoreResult,
  restoreSqliteStore, UNKNOWN_SEQ_GAP,
} from './backup.js'
