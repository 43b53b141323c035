import fs from "node:fs";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { DB } from "../../db/connection";
import { SHA256_RE, referencedHashes } from "../../vault/blobs";
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "../../util/modes";
import { ArchiveError } from "../format/reader";

/**
 * The trust boundary's one writer (README, Security): everything a restore or an export puts
 * on disk from outside (archive members, blob objects from a bucket) goes through here.
 * A path comes only from a validated value, is resolved under its root and opened `wx`;
 * the bytes are cut off the moment they pass the size the caller was told to expect.
 */

/** Stops a stream with `err()` as soon as more than `max` bytes went through. */
export function byteCap(max: number, err: (seen: number) => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) return cb(err(seen));
      cb(null, chunk);
    },
  });
}

/** `root/relative`, refused unless it stays inside `root`. */
export function pathUnder(root: string, relative: string): string {
  const base = path.resolve(root);
  const target = path.resolve(base, relative);
  if (!target.startsWith(base + path.sep)) throw new ArchiveError("ARCHIVE_BAD_PATH", `Refusing to write ${JSON.stringify(relative)} outside the staging directory.`);
  return target;
}

/** Write `content`, through `through`, to a new file `root/relative` (never an existing one), at most `maxBytes` when given. */
export async function writeNewFileUnder(
  root: string,
  relative: string,
  content: Readable,
  opts: { through?: Transform[]; maxBytes?: number; tooLarge?: (seen: number) => Error; signal?: AbortSignal } = {},
): Promise<void> {
  const target = pathUnder(root, relative);
  fs.mkdirSync(path.dirname(target), { recursive: true, mode: PRIVATE_DIR_MODE });
  const out = fs.createWriteStream(target, { flags: "wx", mode: PRIVATE_FILE_MODE });
  const stages: (NodeJS.ReadableStream | NodeJS.WritableStream | Transform)[] = [content, ...(opts.through ?? [])];
  if (opts.maxBytes !== undefined) stages.push(byteCap(opts.maxBytes, opts.tooLarge ?? ((n) => new ArchiveError("MEMBER_TOO_LARGE", `${relative} is larger than declared (${n} bytes or more).`))));
  stages.push(out);
  await (pipeline as (...a: unknown[]) => Promise<void>)(...stages, ...(opts.signal ? [{ signal: opts.signal }] : []));
}

/** The payload path of the blob `sha256`: only a 64-hex name becomes a path. */
export function blobPathIn(vaultRoot: string, sha256: string): string {
  if (!SHA256_RE.test(sha256)) throw new ArchiveError("DB_BAD_HASH", `A document's content hash ${JSON.stringify(sha256.slice(0, 80))} is not a SHA-256 (64 hex digits); the backup's database has been altered.`);
  return pathUnder(vaultRoot, `${sha256.slice(0, 2)}/${sha256}`);
}

/**
 * The document hashes a backup's database names (a restored database is outside input), each
 * checked to be 64 hex digits before any of them is used to name a file or an object.
 */
export function documentHashes(db: DB): string[] {
  const shas = referencedHashes(db);
  for (const sha of shas) {
    if (typeof sha !== "string" || !SHA256_RE.test(sha)) {
      throw new ArchiveError("DB_BAD_HASH", `The backup's database names a document whose content hash (${JSON.stringify(String(sha).slice(0, 80))}) is not a SHA-256; it has been altered. Nothing was restored.`);
    }
  }
  return shas as string[];
}
