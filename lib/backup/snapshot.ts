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

// Pages copied per step: large enough to be quick, small enough that one
// step (which holds the event loop) stays in the tens of milliseconds.
const PAGES_PER_STEP = 4096;

/**
 * A consistent copy of the live database through SQLite's online backup API
 * on the app's own connection: writes the app makes meanwhile are carried
 * into the copy by SQLite, so it is one point in time. Never a raw file copy.
 */
export async function snapshotDatabase(inst: Instance, workDir: string): Promise<DbSnapshot> {
  const file = path.join(workDir, "coffer.db");
  await inst.db.backup(file, { progress: () => PAGES_PER_STEP });
  const snap = new Database(file);
  try {
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

export async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const hash = crypto.createHash("sha256");
  let size = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), size };
}
