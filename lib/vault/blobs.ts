import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AppError } from "../errors";
import { fsyncDirAsync, handleStream } from "../util/fsatomic";
import type { DataPaths } from "../paths";
import type { DB } from "../db/connection";
import { formatBytes } from "../format";

export const SHA256_RE = /^[0-9a-f]{64}$/;

/**
 * Every content hash a document row names (live and trashed), sorted: the
 * blobs a backup carries, the doctor expects and a restore fetches. From a
 * database Coffer did not make, the values are unchecked: a restore goes
 * through documentHashes (lib/backup/restore/payload.ts), which refuses any
 * that is not a SHA-256. The snapshot worker runs the same SELECT on its own
 * thread, where it cannot import this.
 */
export function referencedHashes(db: DB): unknown[] {
  return db.prepare("SELECT DISTINCT sha256 FROM documents ORDER BY sha256").pluck().all();
}

export function blobPath(paths: DataPaths, sha256: string): string {
  if (!SHA256_RE.test(sha256)) throw new Error(`not a blob name: ${sha256}`);
  return path.join(paths.vault, sha256.slice(0, 2), sha256);
}

/** A blob written to .tmp, hashed and fsynced, not yet in the vault. */
export interface StagedBlob {
  tmpPath: string;
  sha256: string;
  size: number;
}

/**
 * Stream `source` into a temp file while hashing it; the bytes are never
 * held in memory. Over `maxBytes` aborts with 413 and leaves nothing behind.
 */
export async function stageBlob(paths: DataPaths, source: Readable, maxBytes: number): Promise<StagedBlob> {
  const tmpPath = path.join(paths.tmp, `blob-${crypto.randomBytes(8).toString("hex")}`);
  const hash = crypto.createHash("sha256");
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > maxBytes) {
        cb(new AppError(413, "TOO_LARGE", `The file is larger than the upload limit of ${formatBytes(maxBytes)}.`));
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  // Opened before the pipeline starts: were the stream to open the file
  // itself, a body that fails at once (the client hung up) could reject the
  // pipeline, and the clean-up run, before the open created the file.
  const fh = await fs.promises.open(tmpPath, "wx", 0o600);
  const { out, release } = handleStream(fh);
  try {
    try {
      await pipeline(source, meter, out);
      await fh.sync(); // off the event loop: a busy disk makes fsync slow for every request
    } finally {
      await release();
    }
  } catch (err) {
    await fs.promises.rm(tmpPath, { force: true });
    throw err;
  }
  return { tmpPath, sha256: hash.digest("hex"), size };
}

/**
 * Move a staged blob to its content address. Synchronous on purpose: the
 * caller records the reference in the same tick, so a concurrent delete of
 * the last other reference cannot unlink the blob in between. The rename is
 * made durable by `durable()`, awaited before the upload is answered: an
 * fsync here would hold the event loop for a disk wait, and during a backup
 * that wait is long.
 */
export function commitBlobSync(paths: DataPaths, staged: StagedBlob): { dest: string; durable: () => Promise<void> } {
  const dest = blobPath(paths, staged.sha256);
  if (fs.existsSync(dest)) {
    fs.rmSync(staged.tmpPath, { force: true });
    return { dest, durable: async () => {} };
  }
  const dir = path.dirname(dest);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.renameSync(staged.tmpPath, dest);
  return { dest, durable: () => fsyncDirAsync(dir) };
}

export function discardStagedBlob(staged: StagedBlob): void {
  fs.rmSync(staged.tmpPath, { force: true });
}
