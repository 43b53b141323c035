import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import Database from "better-sqlite3";
import type { Instance } from "../instance";

export interface DbSnapshot {
  file: string;
  schemaVersion: number;
  tables: Record<string, number>;
  /** Blob names the snapshot's documents reference, sorted. */
  referencedBlobs: string[];
}

// Pages copied per step. A step holds its pages in memory on both sides and
// holds the event loop, so it stays small: 4 MiB, a few milliseconds.
const PAGES_PER_STEP = 1024;

/**
 * A consistent copy of the live database through SQLite's online backup API
 * on the app's own connection: writes the app makes meanwhile are carried
 * into the copy by SQLite, so it is one point in time. Never a raw file copy.
 */
export async function snapshotDatabase(inst: Instance, workDir: string): Promise<DbSnapshot> {
  const file = path.join(workDir, "coffer.db");
  // The backup reads every page through the app connection's page cache;
  // a small cache while it runs, and its memory handed back after.
  const cacheSize = inst.db.pragma("cache_size", { simple: true }) as number;
  inst.db.pragma("cache_size = -2000");
  try {
    await inst.db.backup(file, { progress: () => PAGES_PER_STEP });
  } finally {
    if (inst.db.open) {
      inst.db.pragma(`cache_size = ${cacheSize}`);
      inst.db.pragma("shrink_memory");
    }
  }
  const snap = new Database(file);
  try {
    // Scanning the copy needs no 16 MiB page cache (better-sqlite3's default).
    snap.pragma("cache_size = -2000");
    // The copy keeps the source's WAL flag; make it one self-contained file.
    snap.pragma("journal_mode = DELETE");
    const check = snap.pragma("quick_check", { simple: true });
    if (check !== "ok") throw new Error(`the database snapshot failed quick_check: ${check}`);
    const names = snap
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .pluck()
      .all() as string[];
    const tables: Record<string, number> = {};
    for (const n of names) tables[n] = snap.prepare(`SELECT count(*) FROM "${n.replace(/"/g, '""')}"`).pluck().get() as number;
    const referencedBlobs = snap.prepare("SELECT DISTINCT sha256 FROM documents ORDER BY sha256").pluck().all() as string[];
    return { file, schemaVersion: snap.pragma("user_version", { simple: true }) as number, tables, referencedBlobs };
  } finally {
    snap.close();
  }
}

/** SHA-256 of a file through one reused buffer: no garbage left for the GC, whatever the size. */
export async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const hash = crypto.createHash("sha256");
  const buf = Buffer.allocUnsafe(1024 * 1024);
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
