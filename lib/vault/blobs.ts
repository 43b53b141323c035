import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AppError } from "../errors";
import { fsyncDir } from "../util/fsatomic";
import type { DataPaths } from "../paths";
import { formatBytes } from "../format";

export const SHA256_RE = /^[0-9a-f]{64}$/;

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
  const out = fs.createWriteStream(tmpPath, { flags: "wx", mode: 0o644 });
  try {
    await pipeline(source, meter, out);
    const fd = fs.openSync(tmpPath, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    fs.rmSync(tmpPath, { force: true });
    throw err;
  }
  return { tmpPath, sha256: hash.digest("hex"), size };
}

/**
 * Move a staged blob to its content address. Synchronous on purpose: the
 * caller records the reference in the same tick, so a concurrent delete of
 * the last other reference cannot unlink the blob in between.
 */
export function commitBlobSync(paths: DataPaths, staged: StagedBlob): string {
  const dest = blobPath(paths, staged.sha256);
  if (fs.existsSync(dest)) {
    fs.rmSync(staged.tmpPath, { force: true });
    return dest;
  }
  const dir = path.dirname(dest);
  fs.mkdirSync(dir, { recursive: true });
  fs.renameSync(staged.tmpPath, dest);
  fsyncDir(dir);
  return dest;
}

export function discardStagedBlob(staged: StagedBlob): void {
  fs.rmSync(staged.tmpPath, { force: true });
}
