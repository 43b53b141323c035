import Database from "better-sqlite3";
import { MIGRATIONS, SCHEMA_VERSION } from "./migrations";

export type DB = Database.Database;

/** 'Cofr' as a big-endian int32: marks a SQLite file as Coffer's own. */
export const COFFER_APPLICATION_ID = 0x436f6672;

/** Every connection Coffer opens goes through here, so pragmas are the same everywhere. */
export function openDatabase(file: string, opts: { readonly?: boolean } = {}): DB {
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  if (!opts.readonly) {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
  }
  return db;
}

export class ForeignDatabaseError extends Error {}

/**
 * Bring a database up to SCHEMA_VERSION. A fresh file gets Coffer's
 * application_id; a file that carries another application's id is refused.
 */
export function migrate(db: DB): { from: number; to: number } {
  const appId = db.pragma("application_id", { simple: true }) as number;
  const from = db.pragma("user_version", { simple: true }) as number;
  if (appId !== COFFER_APPLICATION_ID) {
    const hasTables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number }).n > 0;
    if (appId !== 0 || hasTables) {
      throw new ForeignDatabaseError(
        `this database does not belong to Coffer (application_id ${appId}, expected ${COFFER_APPLICATION_ID})`,
      );
    }
    db.pragma(`application_id = ${COFFER_APPLICATION_ID}`);
  }
  if (from >= SCHEMA_VERSION) return { from, to: from };
  const apply = db.transaction(() => {
    for (let v = from; v < SCHEMA_VERSION; v++) {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    }
  });
  apply();
  return { from, to: SCHEMA_VERSION };
}

export function getMeta(db: DB, key: string): string | null {
  const row = db.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
  return row?.value ?? null;
}

export function setMeta(db: DB, key: string, value: string): void {
  db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(
    key,
    value,
  );
}
