import type Database from "better-sqlite3";

/** What the snapshot worker is given: the live database, the copy to write, where better-sqlite3 resolves from. */
export interface SnapshotJob {
  source: string;
  dest: string;
  requireFrom: string;
}

export type SnapshotReply =
  | { ok: true; schemaVersion: number; tables: Record<string, number>; referencedBlobs: string[] }
  | { ok: false; message: string };

/**
 * The body of the snapshot worker (see `snapshotDatabase` in snapshot.ts),
 * run in its worker thread from source (worker-source.ts: self-contained,
 * modules via `load`): the copy and the checks on it read the whole
 * database, and the server's event loop must keep answering meanwhile. Its
 * own connection copies with VACUUM INTO: one statement, one read
 * transaction, so a point in time that writers in this or any other process
 * can neither block (WAL) nor restart (SQLite restarts a stepwise online
 * backup whenever another connection writes between steps, so a CLI backup
 * under steady writes might never finish). VACUUM INTO keeps
 * application_id and user_version, and needs half the memory of the backup
 * API, whose destination connection gets a 16 MiB page cache.
 */
export async function snapshotBody(load: NodeJS.Require): Promise<void> {
  const { parentPort, workerData } = load("node:worker_threads") as typeof import("node:worker_threads");
  const { createRequire } = load("node:module") as typeof import("node:module");
  const { source, dest, requireFrom } = workerData as SnapshotJob;
  const port = parentPort!;
  const reply = (r: SnapshotReply) => port.postMessage(r);
  try {
    const Sqlite = createRequire(requireFrom)("better-sqlite3") as typeof Database;
    const src = new Sqlite(source, { fileMustExist: true });
    try {
      src.pragma("busy_timeout = 5000");
      src.pragma("cache_size = -2000");
      src.prepare("VACUUM INTO ?").run(dest);
    } finally {
      src.close();
    }
    const snap = new Sqlite(dest);
    try {
      snap.pragma("cache_size = -2000");
      // The copy keeps the source's WAL flag; make it one self-contained file.
      snap.pragma("journal_mode = DELETE");
      const check = snap.pragma("quick_check", { simple: true });
      if (check !== "ok") throw new Error(`the database snapshot failed quick_check: ${check}`);
      const names = snap.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
      const tables: Record<string, number> = {};
      for (const n of names) tables[n] = snap.prepare(`SELECT count(*) FROM "${n.replace(/"/g, '""')}"`).pluck().get() as number;
      const referencedBlobs = snap.prepare("SELECT DISTINCT sha256 FROM documents ORDER BY sha256").pluck().all() as string[];
      reply({ ok: true, schemaVersion: snap.pragma("user_version", { simple: true }) as number, tables, referencedBlobs });
    } finally {
      snap.close();
    }
  } catch (err) {
    reply({ ok: false, message: String((err as { message?: unknown } | null | undefined)?.message || err) });
  }
}
