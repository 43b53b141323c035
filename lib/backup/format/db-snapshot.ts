import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Worker } from "node:worker_threads";
import type { Instance } from "../../instance";
import { paceFileWriteback } from "../../util/writeback";
import { LOWER_THIS_THREAD } from "./pgzip";

export interface DbSnapshot {
  file: string;
  schemaVersion: number;
  tables: Record<string, number>;
  /** Blob names the snapshot's documents reference, sorted. */
  referencedBlobs: string[];
}

/**
 * Runs in a worker thread (plain CommonJS, not bundled): the copy and the
 * checks on it read the whole database, and the server's event loop must
 * keep answering meanwhile. Its own connection copies with VACUUM INTO: one
 * statement, one read transaction, so a point in time that writers in this
 * or any other process can neither block (WAL) nor restart (SQLite restarts
 * a stepwise online backup whenever another connection writes between
 * steps, so a CLI backup under steady writes might never finish). VACUUM
 * INTO keeps application_id and user_version, and needs half the memory of
 * the backup API, whose destination connection gets a 16 MiB page cache.
 */
const WORKER_SOURCE = String.raw`
${LOWER_THIS_THREAD}
const { parentPort, workerData } = require("node:worker_threads");
const { createRequire } = require("node:module");
const { source, dest, requireFrom } = workerData;
(async () => {
  const Database = createRequire(requireFrom)("better-sqlite3");
  const src = new Database(source, { fileMustExist: true });
  try {
    src.pragma("busy_timeout = 5000");
    src.pragma("cache_size = -2000");
    src.prepare("VACUUM INTO ?").run(dest);
  } finally {
    src.close();
  }
  const snap = new Database(dest);
  try {
    snap.pragma("cache_size = -2000");
    // The copy keeps the source's WAL flag; make it one self-contained file.
    snap.pragma("journal_mode = DELETE");
    const check = snap.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new Error("the database snapshot failed quick_check: " + check);
    const names = snap.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all();
    const tables = {};
    for (const n of names) tables[n] = snap.prepare('SELECT count(*) FROM "' + n.replace(/"/g, '""') + '"').pluck().get();
    const referencedBlobs = snap.prepare("SELECT DISTINCT sha256 FROM documents ORDER BY sha256").pluck().all();
    parentPort.postMessage({ ok: true, schemaVersion: snap.pragma("user_version", { simple: true }), tables, referencedBlobs });
  } finally {
    snap.close();
  }
})().catch((err) => parentPort.postMessage({ ok: false, message: String((err && err.message) || err) }));
`;

/** Where the worker resolves better-sqlite3 from: the app's own directory (bin/coffer.cjs sets it for the CLI). */
function requireFrom(): string {
  return path.join(process.env.COFFER_APP_ROOT ?? process.cwd(), "package.json");
}

/**
 * A consistent copy of the live database (SQLite's online backup API), taken
 * in a worker thread with its own connection, then checked there
 * (quick_check, row counts, referenced blobs). Never a raw file copy.
 */
export async function snapshotDatabase(inst: Instance, workDir: string): Promise<DbSnapshot> {
  const file = path.join(workDir, "coffer.db");
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { source: inst.paths.db, dest: file, requireFrom: requireFrom() } });
  const pacer = paceFileWriteback(file);
  try {
    const result = await new Promise<{ ok: true; schemaVersion: number; tables: Record<string, number>; referencedBlobs: string[] } | { ok: false; message: string }>(
      (resolve, reject) => {
        worker.once("message", resolve);
        worker.once("error", reject);
        worker.once("exit", (code) => reject(new Error(`the snapshot worker stopped (exit code ${code})`)));
      },
    );
    if (!result.ok) throw new Error(result.message);
    return { file, schemaVersion: result.schemaVersion, tables: result.tables, referencedBlobs: result.referencedBlobs };
  } finally {
    await pacer.stop();
    await worker.terminate();
  }
}

/** SHA-256 of a file through one reused buffer (the caller's, to reuse it across files): no garbage left for the GC. */
export async function sha256File(file: string, buf: Buffer = Buffer.allocUnsafe(1024 * 1024)): Promise<{ sha256: string; size: number }> {
  const hash = crypto.createHash("sha256");
  const fh = await fs.promises.open(file, "r");
  let size = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, size);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return { sha256: hash.digest("hex"), size };
}
