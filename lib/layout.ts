/**
 * The ground floor: where instance state lives in a data directory. Paths,
 * the lock, file modes, the doctor and the archive format all name files by
 * this table, so it depends on nothing.
 */
/** Where instance state lives, relative to the data directory (docs/architecture.md#the-data-directory). */
export const LAYOUT = {
  database: "coffer.db",
  /** SQLite's WAL and shared-memory files: never copied, never allowed to meet another database. */
  databaseSidecars: ["coffer.db-wal", "coffer.db-shm"],
  settings: "settings.yaml",
  keysDir: "keys",
  secretKey: "keys/secret.key",
  configKey: "keys/config.key",
  vault: "vault",
  backups: "backups",
  setupToken: "setup-token",
  /** This installation's id (offsite repositories record whose they are); never archived, so a restore onto a new server gets a new one. */
  instanceId: "instance-id",
  staging: ".staging",
  tmp: ".tmp",
  lock: "coffer.lock",
  lostFound: "lost+found",
} as const;
