import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Worker } from "node:worker_threads";
import type { Instance } from "../../instance";
import { paceFileWriteback } from "../../util/writeback";
import { snapshotBody, type SnapshotJob, type SnapshotReply } from "./snapshot-worker";
import { lowerThisThread, workerSource } from "./worker-source";

export interface DbSnapshot {
  file: string;
  schemaVersion: number;
  tables: Record<string, number>;
  /** Blob names the snapshot's documents reference, sorted. */
  referencedBlobs: string[];
}

/** The snapshot worker: `snapshotBody` (snapshot-worker.ts) at nice 10. */
const WORKER_SOURCE = workerSource(lowerThisThread, snapshotBody);

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
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { source: inst.paths.db, dest: file, requireFrom: requireFrom() } satisfies SnapshotJob });
  const pacer = paceFileWriteback(file);
  try {
    const result = await new Promise<SnapshotReply>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`the snapshot worker stopped (exit code ${code})`)));
    });
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
