import fs from "node:fs";
import crypto from "node:crypto";
import { PassThrough, Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AppError, type ErrorCode } from "../../errors";
import { AgeError, createDecryptStream, createEncryptStream, type AgeEncryptTo, type AgeKeys } from "../../crypto/age";
import { hashingTap } from "../../util/hashing";
import { collectAfter } from "../../util/gc";
import { writeNewFileUnder } from "../restore/payload";
import { explainS3Error, s3Status, transferStopped, type S3Target } from "./s3";
import { describeLocation, type S3Location } from "./location";
import type { OffsiteRepo } from "./repository";

/**
 * Moving blobs between the vault (or a staging payload) and the bucket, one
 * stream each, nothing held whole: an upload is retried by re-reading its
 * file, a download is bounded by S3Target.open (declared size, stall, the
 * caller's signal) and written through the trust boundary's writer.
 */

/** Blobs moved at once (aws s3 sync uses 10). Each is a stream: a few 256 KiB buffers in memory. */
export const BLOB_CONCURRENCY = 8;

/** Tries per blob: a blob is re-read from the vault for each, so a dropped connection or a 500 costs one resend. */
const BLOB_TRIES = 3;

/**
 * Passes a vault file through, hashing it, and holds its last chunk back
 * until the end: a file that does not match its name (damaged on disk)
 * fails the stream before the last byte is sent, so the store never
 * completes that object.
 */
function verifiedBody(sha: string): Transform {
  const hash = crypto.createHash("sha256");
  let held: Buffer | null = null;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      // The SDK's request does not count towards lib/util/gc's collections; without this, 8 uploads' spent chunks piled up (+100 MiB).
      collectAfter(chunk.length);
      const out = held;
      held = chunk;
      cb(null, out ?? undefined);
    },
    flush(cb) {
      if (hash.digest("hex") !== sha) return cb(new Error(`the vault file ${sha} does not match its hash (damaged on disk); run the doctor`));
      cb(null, held ?? undefined);
    },
  });
}

/**
 * One blob, one PUT with its exact length (the age file's, when encrypted),
 * checked against its hash on the way (see verifiedBody).
 */
export function uploadBlob(repo: OffsiteRepo, objectName: string, file: string, sha: string, size: number, to: AgeEncryptTo | undefined, signal?: AbortSignal): Promise<number> {
  return uploadFile(repo.blobs, repo.loc, objectName, file, size, to, { signal, check: () => verifiedBody(sha) });
}

/**
 * One local file, one PUT with its exact length (the age file's, when
 * encrypted): streamed with nothing buffered, and retried by re-reading the
 * file (the SDK cannot retry a stream). `check`, when given, makes a fresh
 * Transform per try that fails the body before its end. Returns the bytes stored.
 */
export async function uploadFile(
  target: S3Target,
  loc: S3Location,
  objectName: string,
  file: string,
  size: number,
  to: AgeEncryptTo | undefined,
  opts: { signal?: AbortSignal; check?: () => Transform } = {},
): Promise<number> {
  const { signal } = opts;
  for (let attempt = 1; ; attempt++) {
    const enc = to ? await createEncryptStream(to) : null;
    const length = enc ? enc.encryptedSize(size) : size;
    const body = new PassThrough({ highWaterMark: 64 * 1024 });
    // A failed read (or a damaged vault file) must end the request too: the store would wait for the declared length.
    const request = new AbortController();
    const onAbort = () => request.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort);
    const source = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
    const stages: NodeJS.ReadWriteStream[] = [...(opts.check ? [opts.check()] : []), ...(enc ? [enc] : [])];
    let sendFailed = false;
    let localError: unknown = null;
    (pipeline as (...s: unknown[]) => Promise<void>)(source, ...stages, body).catch((err: unknown) => {
      // Only a failure before the request's own: once we give up on the request, the body is torn down on purpose.
      if (!sendFailed) localError = err;
      request.abort(err);
    });
    try {
      await target.putStream(objectName, body, length, request.signal);
      return length;
    } catch (err) {
      sendFailed = true;
      body.destroy();
      // A local failure (the file damaged or unreadable) is what happened; resending would not help.
      if (localError) throw localError;
      const status = s3Status(err);
      const transient = status === undefined || status >= 500 || status === 408 || status === 429;
      if (signal?.aborted || !transient || attempt >= BLOB_TRIES) throw explainS3Error(err, loc);
      await new Promise((r) => setTimeout(r, 250 * attempt));
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

function corrupt(repo: OffsiteRepo, objectName: string, why: string, code: ErrorCode = "OFFSITE_CORRUPT"): AppError {
  return new AppError(422, code, `The object blobs/${objectName} in ${describeLocation(repo.loc)} is damaged: ${why}. Restore another snapshot, or run a backup to send it again.`);
}

/** The most bytes an age file of `plain` bytes can take: header (parseHeader's cap), nonce, a tag per 64 KiB chunk. */
export const ageBound = (plain: number) => plain + 64 * 1024 + 16 + 16 * (Math.ceil(plain / (64 * 1024)) + 1);

/**
 * Download one blob as a new file `relative` under `root` (through the trust boundary's
 * writer), decrypting, and check it against its hash. A bucket is untrusted: the object is cut
 * off as soon as it passes what the index declared, and the transfer stops with `signal`.
 */
export async function fetchBlob(repo: OffsiteRepo, w: { obj: string; sha: string; size: number }, root: string, relative: string, keys: AgeKeys | null, signal?: AbortSignal): Promise<void> {
  let body: Readable;
  try {
    // Cut off past what the index declared (the age file's bound, when encrypted), before a byte more is staged.
    body = await repo.blobs.open(w.obj, { maxBytes: keys ? ageBound(w.size) : w.size, signal });
  } catch (err) {
    if ((err as AppError).status === 404) {
      throw new AppError(422, "OFFSITE_MISSING", `The object blobs/${w.obj} in ${describeLocation(repo.loc)} is missing, though the snapshot needs it. Restore another snapshot, or run a backup to send it again.`);
    }
    throw err;
  }
  const oversize = () => corrupt(repo, w.obj, `it is larger than the ${w.size} bytes its snapshot's index declares`, "OFFSITE_OVERSIZE");
  const tap = hashingTap({ collect: true });
  const through: Transform[] = [];
  if (keys) through.push(createDecryptStream(keys));
  through.push(tap);
  try {
    await writeNewFileUnder(root, relative, body, { through, maxBytes: w.size, tooLarge: oversize, signal });
  } catch (err) {
    body.destroy();
    if (err instanceof AppError) throw err;
    if (err instanceof AgeError) throw corrupt(repo, w.obj, err.code === "ARCHIVE_TAMPERED" ? "it does not decrypt (altered or cut short)" : err.message);
    if (signal?.aborted) throw transferStopped(signal.reason);
    throw explainS3Error(err, repo.loc);
  }
  if (tap.bytes() !== w.size) throw corrupt(repo, w.obj, `it holds ${tap.bytes()} bytes, the snapshot expects ${w.size}`);
  if (tap.digest() !== w.sha) throw corrupt(repo, w.obj, "its content does not match the document's hash");
}

