import crypto from "node:crypto";
import { Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Instance } from "../../instance";
import { instanceId } from "../../instance";
import { AppError } from "../../errors";
import { AgeError, createDecryptStream } from "../../crypto/age";
import { hashingTap } from "../../util/hashing";
import { explainS3Error } from "./s3";
import { type S3Location } from "./location";
import { describeLocation } from "./location";
import { blobNamer, closeRepository, openRepository, otherInstance, readIndex, readMarker, repositoryIdentity, type OffsiteRepo, type SnapshotIndex } from "./repository";

// ------------------------------------------------------------ verification ---

/** What re-reading an object found: null when it is whole; `unverifiable` when Coffer holds no key that opens it. */
export type ObjectCheck = { ok: true } | { ok: false; error: string } | { ok: null; note: string };

/**
 * Re-read one object of the repository and prove it: a snapshot against the
 * size and SHA-256 its index recorded when it was written; a blob against
 * its name (the SHA-256 of the document, or its HMAC when encrypted, after
 * decrypting with the repository identity). Nothing is kept on disk.
 */
export async function checkOffsiteObject(
  repo: OffsiteRepo,
  secretKey: Buffer,
  kind: "snapshot" | "blob",
  name: string,
  opts: {
    /** Is this blob object in the repository (from a listing)? A snapshot that names a missing one cannot be restored. */
    haveBlob?: (objectName: string) => boolean;
    /** A blob's size as listed: reading stops past it (a snapshot stops past the size its index recorded). */
    listedBytes?: number;
  } = {},
): Promise<ObjectCheck> {
  const { haveBlob } = opts;
  const where = `${kind === "snapshot" ? "snapshots" : "blobs"}/${name}`;
  let body: Readable;
  let index: SnapshotIndex | null = null;
  try {
    if (kind === "snapshot") {
      index = await readIndex(repo, name);
      if (!index) return { ok: false, error: `${where}: its index is missing or unreadable, so the snapshot cannot be restored` };
    }
    body = await (kind === "snapshot" ? repo.snapshots : repo.blobs).open(name, { maxBytes: index ? index.snapshot_bytes : opts.listedBytes });
  } catch (err) {
    if ((err as AppError).status === 404) return { ok: false, error: `${where} is missing` };
    throw err;
  }
  const tap = hashingTap({ collect: true });
  const encrypted = kind === "blob" && name.endsWith(".age");
  try {
    // The tap passes bytes on: something has to take them, or it stops at its high-water mark.
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    if (encrypted) await pipeline(body, createDecryptStream({ identities: [repositoryIdentity(secretKey)] }), tap, sink);
    else await pipeline(body, tap, sink);
  } catch (err) {
    if (err instanceof AgeError && (err.code === "KEY_MISMATCH" || err.code === "KEY_REQUIRED")) {
      return { ok: null, note: `${where} was sent before Coffer encrypted blobs to its own key too; it is checked when a restore reads it` };
    }
    if (err instanceof AgeError) return { ok: false, error: `${where} does not decrypt (altered or cut short)` };
    if (err instanceof AppError && err.code === "OFFSITE_OVERSIZE") return { ok: false, error: `${where} is longer than ${index ? "was written" : "the bucket lists it"}` };
    throw explainS3Error(err, repo.loc);
  }
  if (index) {
    if (tap.bytes() !== index.snapshot_bytes) return { ok: false, error: `${where} holds ${tap.bytes()} bytes; ${index.snapshot_bytes} were written` };
    if (tap.digest() !== index.snapshot_sha256) return { ok: false, error: `${where} differs from what was written (SHA-256 mismatch)` };
    const missing = haveBlob ? index.blobs.filter(([b]) => !haveBlob(b)) : [];
    if (missing.length) return { ok: false, error: `${where} needs ${missing.length} document file(s) the bucket no longer holds (for example blobs/${missing[0][0]})` };
    return { ok: true };
  }
  const sha = tap.digest();
  if (blobNamer(secretKey, encrypted)(sha) !== name) return { ok: false, error: `${where}: its content does not match its name (damaged)` };
  return { ok: true };
}

// ---------------------------------------------------------- test & probe ---

/**
 * Settings → Backup → Offsite → Test connection: write, read back and
 * delete a probe object, then read the marker. Names the step that failed.
 */
export async function testOffsite(inst: Instance, loc: S3Location, opts: { timeoutMs?: number } = {}): Promise<{ ok: true; message: string }> {
  const repo = openRepository(loc, { timeoutMs: opts.timeoutMs ?? 10_000 });
  try {
    const name = `coffer-probe-${crypto.randomBytes(6).toString("hex")}`;
    const probe = crypto.randomBytes(32);
    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        const e = explainS3Error(err, loc);
        throw new AppError(e.status, e.code, `${what} failed: ${e.message}`, e.fields, { cause: err });
      }
    };
    await step("Writing a test object", () => repo.top.putSmall(name, probe, "application/octet-stream"));
    const back = await step("Reading the test object back", () => repo.top.readSmall(name, 1024));
    await step("Deleting the test object", () => repo.top.delete(name));
    if (!back?.equals(probe)) throw new AppError(502, "OFFSITE_FAILED", "The test object read back with other bytes than were written. Turn on checksum compatibility for this store.");
    const m = await readMarker(repo);
    if (m && m.instance_id !== instanceId(inst)) throw otherInstance(repo, m);
    return { ok: true, message: `Connected: ${describeLocation(loc)} can be written, read and deleted${m ? " and is this instance's repository" : ", and is empty of Coffer backups"}.` };
  } finally {
    closeRepository(repo);
  }
}

