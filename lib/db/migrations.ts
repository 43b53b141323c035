/**
 * Numbered schema migrations. user_version holds the number of the last one
 * applied; a database newer than this list is opened as-is (restore keeps
 * tables it does not know) and reported by schemaStatus().
 */
export const MIGRATIONS: readonly string[] = [
  // 1: foundation
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    session_version INTEGER NOT NULL DEFAULT 1,
    used_bytes      INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL
  );
  CREATE TABLE documents (
    id           INTEGER PRIMARY KEY,
    owner_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE RESTRICT,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    created_at   TEXT NOT NULL
  );
  CREATE INDEX documents_owner ON documents(owner_id);
  CREATE INDEX documents_sha256 ON documents(sha256);
  CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    actor_id INTEGER,
    actor    TEXT,
    action   TEXT NOT NULL,
    target   TEXT,
    ip       TEXT,
    detail   TEXT
  );
  CREATE INDEX audit_log_at ON audit_log(at);
  `,
  // 2: backups
  `
  CREATE TABLE backup_runs (
    id          INTEGER PRIMARY KEY,
    trigger     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL CHECK (status IN ('running', 'success', 'failed')),
    file        TEXT,
    bytes       INTEGER,
    verified    INTEGER NOT NULL DEFAULT 0,
    error       TEXT
  );
  CREATE INDEX backup_runs_started ON backup_runs(started_at);
  CREATE INDEX backup_runs_file ON backup_runs(file);
  CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  `,
  // 3: the job lock moved to a lock file outside the database (lib/lock.ts), which a restore does not swap
  `
  DROP TABLE leases;
  `,
  // 4: encrypted archives: how each run's archive was encrypted, and the SHA-256 of what was stored
  `
  ALTER TABLE backup_runs ADD COLUMN encryption TEXT;
  ALTER TABLE backup_runs ADD COLUMN sha256 TEXT;
  `,
  // 5: sessions ended by signing out, until their token would have expired anyway
  `
  CREATE TABLE ended_sessions (
    sid        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  );
  `,
  // 6: offsite runs: where a run's result went (the local directory, or the S3 repository) and what it sent
  `
  ALTER TABLE backup_runs ADD COLUMN target TEXT NOT NULL DEFAULT 'local';
  ALTER TABLE backup_runs ADD COLUMN detail TEXT;
  `,
  // 7: proof. When each stored object (a local archive, an offsite snapshot or blob) was last re-read and what
  // that found (ok: 1 whole, 0 damaged, NULL no key here opens it); and each restore drill with its timings.
  `
  CREATE TABLE verifications (
    target      TEXT NOT NULL,
    object      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    verified_at TEXT NOT NULL,
    ok          INTEGER,
    error       TEXT,
    PRIMARY KEY (target, object)
  );
  CREATE INDEX verifications_due ON verifications(verified_at);
  CREATE TABLE drills (
    id          INTEGER PRIMARY KEY,
    trigger     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,
    source      TEXT,
    archive     TEXT,
    seconds     REAL,
    detail      TEXT,
    error       TEXT
  );
  `,
  // 8: API tokens for automation. Only a SHA-256 of each token is kept; scopes as a JSON list.
  `
  CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT
  );
  `,
  // 9: the trash. A deleted document keeps its row and blob until it is purged; deleted_at marks it.
  `
  ALTER TABLE documents ADD COLUMN deleted_at TEXT;
  ALTER TABLE documents ADD COLUMN deleted_by INTEGER REFERENCES users(id) ON DELETE SET NULL;
  CREATE INDEX documents_trashed ON documents(deleted_at) WHERE deleted_at IS NOT NULL;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
