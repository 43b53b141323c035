import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { PassThrough, Transform, Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { openDatabase } from "../db/connection";
import { z } from "zod";
import { PutObjectCommand, GetObjectCommand, DeleteObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { Instance } from "../instance";
import { instanceId } from "../instance";
import { AppError } from "../errors";
import { AgeError, createDecryptStream, createEncryptStream, recipientOf, type AgeEncryptTo, type AgeKeys } from "../crypto/age";
import { blobPath } from "../vault/blobs";
import { pinBlobs } from "../vault/pins";
import { hashingTap } from "../util/hashing";
import { removeWorkDir } from "./workdir";
import { blobPathIn, byteCap, documentHashes, pathUnder, writeNewFileUnder } from "./payload";
import { collectAfter, collectAfterRequest } from "../util/gc";
import { freeArchiveName } from "./repository";
import { INSTANCE_MEMBERS, LAYOUT, isArchiveName, isScope, isEncryptedArchiveName, scopeHasInstance, scopeHasVault, type BackupMeta, type Scope, type Trigger } from "./format";
import { packArchive, writeTarGz, type VaultFile } from "./archive";
import { ArchiveError, readArchive } from "./reader";
import type { DbSnapshot } from "./snapshot";
import { archiveEncryption } from "./encryption";
import { planRetention, type RetentionPolicy } from "./retention";
import { S3Target, s3Client, s3Status, explainS3Error, isNotFound, type S3Location } from "./s3";
import { configuredLocation, describeLocation, joinKey } from "./offsite-settings";

/**
 * The offsite repository (DESIGN section 10): one per instance under
 * s3://bucket/prefix/. Every run after the first is incremental: a blob is
 * uploaded only if the repository lacks it, and the snapshot (a db-scope
 * archive: database, settings, keys) is written last, so a snapshot only
 * ever names blobs already stored. Departure from DESIGN: each snapshot has
 * an index object (indexes/<snapshot>.json) listing the blob objects it
 * names. With recipients encryption Coffer cannot read its own snapshots,
 * and retention has to know which blobs a kept snapshot needs.
 */

export const MARKER_NAME = "coffer-repo.json";
export const REPO_MAGIC = "coffer-repo";
/** Blob objects: <aa>/<sha256> in clear, <aa>/<keyed hash>.age when encrypted. */
export const BLOB_OBJECT_RE = /^[0-9a-f]{2}\/[0-9a-f]{64}(\.age)?$/;
const INDEX_RE = /^coffer_[a-z]+_\d{8}_\d{6}Z(?:_\d{1,4})?\.tar\.gz(\.age)?\.json$/;
/** How long an unreferenced blob or a snapshot-less index is kept: a run in progress elsewhere may be about to name it. */
export const DEFAULT_GRACE_MS = 24 * 3600 * 1000;
/** Blobs moved at once (aws s3 sync uses 10). Each is a stream: a few 256 KiB buffers in memory. */
export const BLOB_CONCURRENCY = 8;

export interface RepoMarker {
  magic: typeof REPO_MAGIC;
  version: 1;
  instance_id: string;
  created_at: string;
  encryption: "off" | "recipients" | "passphrase";
  adopted_at?: string;
}

/** What a snapshot names, in clear: blob object names (keyed hashes when encrypted) and sizes, never document hashes. */
const snapshotIndexSchema = z.object({
  snapshot: z.string(),
  created_at: z.string(),
  scope: z.custom<Scope>((v) => typeof v === "string" && isScope(v)),
  app_version: z.string(),
  schema_version: z.number().int(),
  documents: z.number().int().nonnegative(),
  blobs: z.array(z.tuple([z.string().regex(BLOB_OBJECT_RE), z.number().int().nonnegative()])),
  vault_bytes: z.number().int().nonnegative(),
  snapshot_bytes: z.number().int().nonnegative(),
  snapshot_sha256: z.string(),
  encryption: z.enum(["off", "recipients", "passphrase"]),
});
export type SnapshotIndex = z.infer<typeof snapshotIndexSchema>;

export interface OffsiteRepo {
  loc: S3Location;
  client: S3Client;
  snapshots: S3Target;
  blobs: S3Target;
  indexes: S3Target;
}

export function openRepository(loc: S3Location, opts: { timeoutMs?: number } = {}): OffsiteRepo {
  const client = s3Client(loc, opts);
  return {
    loc,
    client,
    snapshots: new S3Target(client, loc, "snapshots"),
    blobs: new S3Target(client, loc, "blobs", BLOB_OBJECT_RE),
    indexes: new S3Target(client, loc, "indexes", INDEX_RE),
  };
}

export function closeRepository(repo: OffsiteRepo): void {
  repo.client.destroy();
}

/** The repository settings.yaml names, even while sending is off (to list and restore its snapshots). */
export function configuredRepository(inst: Instance): OffsiteRepo {
  return openRepository(configuredLocation(inst));
}

// ------------------------------------------------------------------ marker --

const markerKey = (repo: OffsiteRepo) => joinKey(repo.loc.prefix, MARKER_NAME);

async function readBody(body: Readable, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > cap) throw new Error("the object is larger than expected");
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function getSmallObject(repo: OffsiteRepo, key: string, cap = 64 * 1024 * 1024): Promise<Buffer | null> {
  try {
    const r = await repo.client.send(new GetObjectCommand({ Bucket: repo.loc.bucket, Key: key }));
    return await readBody(r.Body as Readable, cap);
  } catch (err) {
    if (isNotFound(err) && (err as { name?: string }).name !== "NoSuchBucket") return null;
    throw explainS3Error(err, repo.loc);
  }
}

async function putSmallObject(repo: OffsiteRepo, key: string, data: Buffer, contentType = "application/json"): Promise<void> {
  try {
    await repo.client.send(new PutObjectCommand({ Bucket: repo.loc.bucket, Key: key, Body: data, ContentLength: data.length, ContentType: contentType }));
  } catch (err) {
    throw explainS3Error(err, repo.loc);
  }
}

export async function readMarker(repo: OffsiteRepo): Promise<RepoMarker | null> {
  const data = await getSmallObject(repo, markerKey(repo), 64 * 1024);
  if (!data) return null;
  try {
    const m = JSON.parse(data.toString("utf8")) as RepoMarker;
    if (m.magic === REPO_MAGIC && typeof m.instance_id === "string") return m;
  } catch {
    /* below */
  }
  throw new AppError(409, "OFFSITE_NOT_COFFER", `${describeLocation(repo.loc)} has a ${MARKER_NAME} that is not a Coffer repository's. Choose another prefix.`);
}

function otherInstance(repo: OffsiteRepo, m: RepoMarker): AppError {
  return new AppError(
    409,
    "OFFSITE_OTHER_INSTANCE",
    `${describeLocation(repo.loc)} belongs to another Coffer instance (created ${m.created_at}). Two instances writing one repository would prune each other's backups. Choose another prefix, or, if this server replaces that one (say, after restoring it here), adopt the repository in Settings → Backup → Offsite.`,
  );
}

/**
 * Make sure the repository is this instance's: create the marker on first
 * use; refuse one that names another instance.
 */
export async function claimRepository(repo: OffsiteRepo, inst: Instance, encryption: RepoMarker["encryption"]): Promise<RepoMarker> {
  const id = instanceId(inst);
  const m = await readMarker(repo);
  if (m && m.instance_id !== id) throw otherInstance(repo, m);
  if (m && m.encryption === encryption) return m;
  const marker: RepoMarker = { ...(m ?? { magic: REPO_MAGIC, version: 1, instance_id: id, created_at: new Date().toISOString() }), encryption };
  await putSmallObject(repo, markerKey(repo), Buffer.from(JSON.stringify(marker, null, 2) + "\n"));
  return marker;
}

/** Take over a repository another instance made (this server replaces it). */
export async function adoptRepository(repo: OffsiteRepo, inst: Instance): Promise<RepoMarker> {
  const m = await readMarker(repo);
  const now = new Date().toISOString();
  const marker: RepoMarker = m
    ? { ...m, instance_id: instanceId(inst), adopted_at: now }
    : { magic: REPO_MAGIC, version: 1, instance_id: instanceId(inst), created_at: now, encryption: "off" };
  await putSmallObject(repo, markerKey(repo), Buffer.from(JSON.stringify(marker, null, 2) + "\n"));
  return marker;
}

// ------------------------------------------------------------- blob names --

/**
 * Object names for blobs. In clear, the document's SHA-256 (as in the
 * vault). Encrypted, an HMAC of it with a key derived from the instance's
 * secret key, which travels only inside the encrypted snapshot: the bucket
 * does not reveal which documents it holds.
 */
export function blobNamer(secretKey: Buffer, encrypted: boolean): (sha256: string) => string {
  if (!encrypted) return (sha) => `${sha.slice(0, 2)}/${sha}`;
  const key = Buffer.from(crypto.hkdfSync("sha256", secretKey, Buffer.alloc(0), "coffer offsite blob names v1", 32));
  return (sha) => {
    const h = crypto.createHmac("sha256", key).update(sha).digest("hex");
    return `${h.slice(0, 2)}/${h}.age`;
  };
}

/**
 * The X25519 identity blobs are encrypted to in passphrase mode (scrypt for
 * every blob would take a second each): derived from the instance's secret
 * key, which only the passphrase-encrypted snapshot carries offsite.
 */
export function repositoryIdentity(secretKey: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync("sha256", secretKey, Buffer.alloc(0), "coffer offsite blob key v1", 32));
}

/**
 * Blobs are encrypted to the repository identity too (in recipients mode,
 * as well as to the recipients), so that Coffer can re-read and prove them
 * (rolling verification) without the offline identity. That adds no reader:
 * the identity comes from keys/secret.key, which is offsite only inside the
 * snapshots encrypted to the recipients, and whoever holds it on the server
 * holds the plaintext vault already.
 */
function blobEncryption(secretKey: Buffer, to: AgeEncryptTo | undefined): AgeEncryptTo | undefined {
  if (!to) return undefined;
  const own = recipientOf(repositoryIdentity(secretKey));
  return "recipients" in to ? { recipients: [...to.recipients, own] } : { recipients: [own] };
}

// -------------------------------------------------------------------- push --

export interface OffsitePushResult {
  location: string;
  snapshot: string;
  snapshotBytes: number;
  blobsUploaded: number;
  blobsSkipped: number;
  bytesUploaded: number;
  seconds: number;
}

export interface OffsitePushOptions {
  scope: Scope;
  trigger: Trigger;
  /** The database snapshot this run's local archive was made from (one consistent point in time). */
  dbSnapshot: DbSnapshot;
  /** The snapshot's name: the local archive's, so both parts of a run carry one name. */
  name?: string;
  now?: Date;
  /** Checked before the snapshot object is committed; throwing abandons the run. */
  stillHeld?: () => boolean;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Run `fn` over `items` with at most `n` at once; the first failure stops new work and is thrown. */
export async function eachLimit<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const worker = async () => {
    while (failed === null && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed !== null) throw failed;
}

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
 * One blob, one PUT with its exact length (the age file's, when encrypted):
 * streamed from the vault with nothing buffered, and retried by re-reading
 * the file (the SDK cannot retry a stream). Returns the bytes stored.
 */
async function uploadBlob(repo: OffsiteRepo, objectName: string, file: string, sha: string, size: number, to: AgeEncryptTo | undefined, signal?: AbortSignal): Promise<number> {
  const key = repo.blobs.key(objectName);
  for (let attempt = 1; ; attempt++) {
    const enc = to ? await createEncryptStream(to) : null;
    const length = enc ? enc.encryptedSize(size) : size;
    const check = verifiedBody(sha);
    const body = new PassThrough({ highWaterMark: 64 * 1024 });
    // A failed read (or a damaged vault file) must end the request too: the store would wait for the declared length.
    const request = new AbortController();
    const onAbort = () => request.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort);
    const source = fs.createReadStream(file, { highWaterMark: 64 * 1024 });
    let sendFailed = false;
    let localError: unknown = null;
    (enc ? pipeline(source, check, enc, body) : pipeline(source, check, body)).catch((err: unknown) => {
      // Only a failure before the request's own: once we give up on the request, the body is torn down on purpose.
      if (!sendFailed) localError = err;
      request.abort(err);
    });
    try {
      await repo.client.send(new PutObjectCommand({ Bucket: repo.loc.bucket, Key: key, Body: body, ContentLength: length }), { abortSignal: request.signal });
      return length;
    } catch (err) {
      sendFailed = true;
      body.destroy();
      // A local failure (the vault file damaged or unreadable) is what happened; resending would not help.
      if (localError) throw localError;
      const status = s3Status(err);
      const transient = status === undefined || status >= 500 || status === 408 || status === 429;
      if (signal?.aborted || !transient || attempt >= BLOB_TRIES) throw explainS3Error(err, repo.loc);
      await new Promise((r) => setTimeout(r, 250 * attempt));
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/**
 * Send one backup offsite: the blobs the repository lacks, an index, then
 * the snapshot, written last and read back. Nothing of a blob or of the
 * snapshot is held whole in memory.
 */
export async function pushOffsite(inst: Instance, repo: OffsiteRepo, opts: OffsitePushOptions): Promise<OffsitePushResult> {
  const t0 = performance.now();
  if (!scopeHasInstance(opts.scope)) throw new AppError(422, "OFFSITE_SCOPE", "Offsite copies need a backup that includes the database (full or database scope).");
  const encryption = archiveEncryption(inst);
  const mode: RepoMarker["encryption"] = encryption?.record?.mode ?? "off";
  await claimRepository(repo, inst, mode);
  const now = opts.now ?? new Date();
  const name = opts.name && !(await repo.snapshots.stat(opts.name)) ? opts.name : await freeArchiveName(repo.snapshots, opts.scope, now, !!encryption);

  const nameOf = blobNamer(inst.secretKey, !!encryption);
  const blobTo = blobEncryption(inst.secretKey, encryption?.to);
  const shas = scopeHasVault(opts.scope) ? opts.dbSnapshot.referencedBlobs : [];
  const unpin = pinBlobs();
  const workDir = fs.mkdtempSync(path.join(inst.paths.tmp, "offsite-"));
  try {
    const have = new Set((await repo.blobs.list()).map((o) => o.name));
    const sizes = new Map<string, number>();
    for (const sha of shas) {
      try {
        sizes.set(sha, fs.statSync(blobPath(inst.paths, sha)).size);
      } catch {
        throw new Error(`blob ${sha} is referenced by a document but missing from the vault`);
      }
    }
    const missing = shas.filter((sha) => !have.has(nameOf(sha)));
    const total = missing.reduce((a, sha) => a + sizes.get(sha)!, 0);
    let done = 0;
    let bytesUploaded = 0;
    await eachLimit(missing, BLOB_CONCURRENCY, async (sha) => {
      opts.signal?.throwIfAborted();
      const sent = await uploadBlob(repo, nameOf(sha), blobPath(inst.paths, sha), sha, sizes.get(sha)!, blobTo, opts.signal);
      bytesUploaded += sent; // after the await: `x += await …` would add to a stale x while other uploads run
      done += sizes.get(sha)!;
      opts.onProgress?.(done, total);
      collectAfterRequest();
    });

    // The snapshot: a db-scope archive of the same database snapshot, into a temp file so its size and hash are known.
    const snapFile = path.join(workDir, name);
    const packed = await packArchive(inst, fs.createWriteStream(snapFile, { mode: 0o600 }), {
      scope: "db",
      trigger: opts.trigger,
      now,
      dbSnapshot: opts.dbSnapshot,
      encryptTo: encryption?.to,
      signal: opts.signal,
    });
    const index: SnapshotIndex = {
      snapshot: name,
      created_at: packed.meta.created_at,
      scope: opts.scope,
      app_version: packed.meta.app_version,
      schema_version: packed.meta.schema_version,
      documents: packed.meta.tables.documents ?? 0,
      blobs: shas.map((sha) => [nameOf(sha), sizes.get(sha)!]),
      vault_bytes: shas.reduce((a, sha) => a + sizes.get(sha)!, 0),
      snapshot_bytes: packed.bytes,
      snapshot_sha256: packed.sha256,
      encryption: mode,
    };
    await putSmallObject(repo, joinKey(repo.loc.prefix, "indexes", `${name}.json`), Buffer.from(JSON.stringify(index)));
    const obj = await repo.snapshots.put(name, (out) => pipeline(fs.createReadStream(snapFile), out), {
      beforeCommit: () => {
        if (opts.stillHeld && !opts.stillHeld()) throw new Error("the instance lock was lost to another process; this run is abandoned");
      },
    });
    bytesUploaded += obj.size;
    // Read back: what the bucket returns is what was written.
    const back = hashingTap();
    await pipeline(await repo.snapshots.open(name), back, new PassThrough().resume());
    if (back.digest() !== packed.sha256 || back.bytes() !== packed.bytes) {
      throw new AppError(502, "OFFSITE_NOT_VERIFIED", `${name} was uploaded but reading it back from ${repo.snapshots.location} gave other bytes.`);
    }
    return {
      location: describeLocation(repo.loc),
      snapshot: name,
      snapshotBytes: packed.bytes,
      blobsUploaded: missing.length,
      blobsSkipped: shas.length - missing.length,
      bytesUploaded,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    unpin();
    await removeWorkDir(workDir);
  }
}

// ------------------------------------------------------------ snapshots ----

export interface OffsiteSnapshot {
  name: string;
  created_at: string;
  scope: string;
  size: number;
  /** Snapshot plus the document files it names. */
  total_bytes: number;
  documents: number | null;
  encrypted: boolean;
  /** The snapshot object is whole: its size is what its index recorded. */
  verified: boolean;
  app_version: string | null;
}

async function readIndex(repo: OffsiteRepo, name: string): Promise<SnapshotIndex | null> {
  const data = await getSmallObject(repo, joinKey(repo.loc.prefix, "indexes", `${name}.json`));
  if (!data) return null;
  try {
    // Anything the bucket holds is input: an index that does not parse counts as missing (the snapshot is then not complete).
    const parsed = snapshotIndexSchema.safeParse(JSON.parse(data.toString("utf8")));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** The snapshots in the repository, newest first, with what their indexes say. */
export const SNAPSHOT_LIST_MAX = 10_000;
export const SNAPSHOT_INDEX_READS = 500;

export async function listOffsiteSnapshots(repo: OffsiteRepo, signal?: AbortSignal): Promise<OffsiteSnapshot[]> {
  // Bounded: a repository keeps tens of snapshots; a bucket that lists more is not one, and only the newest have their index read.
  const objs = (await repo.snapshots.list({ maxNames: SNAPSHOT_LIST_MAX, signal }))
    .filter((o) => isArchiveName(o.name))
    .sort((a, b) => (a.name < b.name ? 1 : -1))
    .slice(0, SNAPSHOT_INDEX_READS);
  const out: OffsiteSnapshot[] = [];
  await eachLimit(objs, 8, async (o) => {
    const idx = await readIndex(repo, o.name);
    out.push({
      name: o.name,
      created_at: idx?.created_at ?? o.modifiedAt,
      scope: idx?.scope ?? "full",
      size: o.size,
      total_bytes: o.size + (idx?.vault_bytes ?? 0),
      documents: idx?.documents ?? null,
      encrypted: isEncryptedArchiveName(o.name),
      verified: !!idx && idx.snapshot_bytes === o.size,
      app_version: idx?.app_version ?? null,
    });
  });
  return out.sort((a, b) => (a.name < b.name ? 1 : -1));
}

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
  /** Is this blob object in the repository (from a listing)? A snapshot that names a missing one cannot be restored. */
  haveBlob?: (objectName: string) => boolean,
): Promise<ObjectCheck> {
  const where = `${kind === "snapshot" ? "snapshots" : "blobs"}/${name}`;
  let body: Readable;
  let index: SnapshotIndex | null = null;
  try {
    if (kind === "snapshot") {
      index = await readIndex(repo, name);
      if (!index) return { ok: false, error: `${where}: its index is missing or unreadable, so the snapshot cannot be restored` };
    }
    body = await (kind === "snapshot" ? repo.snapshots : repo.blobs).open(name);
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

// ---------------------------------------------------------------- export ---

function corrupt(repo: OffsiteRepo, objectName: string, why: string, code = "OFFSITE_CORRUPT"): AppError {
  return new AppError(422, code, `The object blobs/${objectName} in ${describeLocation(repo.loc)} is damaged: ${why}. Restore another snapshot, or run a backup to send it again.`);
}

/** The most bytes an age file of `plain` bytes can take: header (parseHeader's cap), nonce, a tag per 64 KiB chunk. */
const ageBound = (plain: number) => plain + 64 * 1024 + 16 + 16 * (Math.ceil(plain / (64 * 1024)) + 1);

/**
 * Download one blob as a new file `relative` under `root` (through the trust boundary's
 * writer), decrypting, and check it against its hash. A bucket is untrusted: the object is cut
 * off as soon as it passes what the index declared, and the transfer stops with `signal`.
 */
async function fetchBlob(repo: OffsiteRepo, w: { obj: string; sha: string; size: number }, root: string, relative: string, keys: AgeKeys | null, signal?: AbortSignal): Promise<void> {
  let body: Readable;
  try {
    body = await repo.blobs.open(w.obj);
  } catch (err) {
    if ((err as AppError).status === 404) {
      throw new AppError(422, "OFFSITE_MISSING", `The object blobs/${w.obj} in ${describeLocation(repo.loc)} is missing, though the snapshot needs it. Restore another snapshot, or run a backup to send it again.`);
    }
    throw err;
  }
  const oversize = () => corrupt(repo, w.obj, `it is larger than the ${w.size} bytes its snapshot's index declares`, "OFFSITE_OVERSIZE");
  const tap = hashingTap({ collect: true });
  const through: Transform[] = [byteCap(keys ? ageBound(w.size) : w.size, oversize)];
  if (keys) through.push(createDecryptStream(keys));
  through.push(tap);
  try {
    await writeNewFileUnder(root, relative, body, { through, maxBytes: w.size, tooLarge: oversize, signal });
  } catch (err) {
    body.destroy();
    if (err instanceof AppError) throw err;
    if (err instanceof AgeError) throw corrupt(repo, w.obj, err.code === "ARCHIVE_TAMPERED" ? "it does not decrypt (altered or cut short)" : err.message);
    if ((err as Error).name === "AbortError") throw new AppError(400, "CLIENT_GONE", "The request was cancelled, so the download from the bucket stopped.");
    throw explainS3Error(err, repo.loc);
  }
  if (tap.bytes() !== w.size) throw corrupt(repo, w.obj, `it holds ${tap.bytes()} bytes, the snapshot expects ${w.size}`);
  if (tap.digest() !== w.sha) throw corrupt(repo, w.obj, "its content does not match the document's hash");
}

/** What a snapshot restores to, once its archive is unpacked: the full meta and the blob objects to fetch. */
export interface UnpackedSnapshot {
  meta: BackupMeta;
  warnings: string[];
  encrypted: boolean;
  wanted: { sha: string; obj: string; size: number }[];
  /** Decrypts the blob objects (the caller's identities, and the key the snapshot carries for passphrase mode). */
  blobKeys: AgeKeys | null;
}

/**
 * Read one snapshot (through the archive reader: every member checked,
 * decrypted with `keys` when encrypted) into `dir`, laid out as in a data
 * directory, and work out which blob objects it needs from its database
 * and index. `admit` sees the meta (with the index's document files) before
 * anything is written.
 */
export async function unpackSnapshot(
  repo: OffsiteRepo,
  name: string,
  dir: string,
  keys: AgeKeys | undefined,
  admit?: (meta: BackupMeta) => void,
): Promise<UnpackedSnapshot> {
  if (!isArchiveName(name)) throw new AppError(404, "NOT_FOUND", `${name} is not a snapshot name.`);
  const index = await readIndex(repo, name);
  if (!index) throw new AppError(404, "NOT_FOUND", `There is no snapshot ${name} in ${describeLocation(repo.loc)}.`);
  const full = (m: BackupMeta, objects: number, bytes: number): BackupMeta => ({ ...m, scope: index.scope === "db" ? "db" : "full", vault: { objects, bytes } });
  const summary = await readArchive(await repo.snapshots.open(name), {
    keys,
    // Before a byte is written: the database, settings and keys, and the document files the index lists.
    // The space admitted is the sum of the blob sizes the index lists, each enforced while it streams, not the index's own total.
    onMeta: (m) => admit?.(full(m, index.blobs.length, index.blobs.reduce((a, [, n]) => a + n, 0))),
    onMember: (member, content) => writeNewFileUnder(dir, member, content),
  });
  const snapMeta = summary.meta;
  // Encrypted or not is what the bytes are, never what the name says; a name that disagrees is a tampered repository.
  const encrypted = summary.encryption !== null;
  if (encrypted !== isEncryptedArchiveName(name) || encrypted !== (index.encryption !== "off")) {
    throw new AppError(
      422,
      "OFFSITE_NAME_MISMATCH",
      `The snapshot ${name} in ${describeLocation(repo.loc)} is ${encrypted ? "encrypted" : "not encrypted"}, but its name or index says otherwise: the repository has been altered. Nothing was restored.`,
    );
  }
  let secretKey: Buffer;
  let shas: string[];
  try {
    secretKey = fs.readFileSync(path.join(dir, ...LAYOUT.secretKey.split("/")));
    const db = openDatabase(path.join(dir, LAYOUT.database), { readonly: true });
    try {
      // Checked here, before the first blob is fetched: each becomes a path and an object name.
      shas = index.scope === "db" ? [] : documentHashes(db);
    } finally {
      db.close();
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    // The reader checked every member against the meta; what it cannot judge is whether the database opens.
    throw new ArchiveError("DB_CORRUPT", `The database or keys in the snapshot ${name} cannot be read: ${(err as Error).message}.`);
  }
  const nameOf = blobNamer(secretKey, encrypted);
  const sizes = new Map(index.blobs);
  const wanted = shas.map((sha) => {
    const obj = nameOf(sha);
    const size = sizes.get(obj);
    if (size === undefined) throw new AppError(422, "OFFSITE_CORRUPT", `The snapshot ${name} names a document file its index does not list; the repository is inconsistent.`);
    return { sha, obj, size };
  });
  return {
    meta: full(snapMeta, wanted.length, wanted.reduce((a, w) => a + w.size, 0)),
    warnings: summary.warnings,
    encrypted,
    wanted,
    blobKeys: encrypted ? { identities: [...(keys?.identities ?? []), repositoryIdentity(secretKey)] } : null,
  };
}

/**
 * Fetch a snapshot's blobs straight into a vault directory (a restore's
 * staging payload), BLOB_CONCURRENCY at a time, each checked against its
 * hash as it arrives. No archive is assembled on the way: the restore's
 * bytes are the bucket's bytes, written once.
 */
export async function fetchSnapshotBlobs(repo: OffsiteRepo, snap: UnpackedSnapshot, vaultDir: string, signal?: AbortSignal): Promise<void> {
  await eachLimit(snap.wanted, BLOB_CONCURRENCY, async (w) => {
    signal?.throwIfAborted();
    blobPathIn(vaultDir, w.sha);
    await fetchBlob(repo, w, vaultDir, `${w.sha.slice(0, 2)}/${w.sha}`, snap.blobKeys, signal);
  });
}

/**
 * Assemble a portable full archive (format v1, plain .tar.gz) from one
 * snapshot and the blobs it names: what the backup would have been as a
 * local file. Blobs are fetched BLOB_CONCURRENCY at a time into temp files
 * and checked against their hashes before a byte of them is written out.
 */
export async function exportSnapshot(repo: OffsiteRepo, name: string, out: Writable, opts: { tmpDir: string; keys?: AgeKeys; signal?: AbortSignal }): Promise<BackupMeta> {
  const work = fs.mkdtempSync(path.join(opts.tmpDir, "export-"));
  try {
    const snap = await unpackSnapshot(repo, name, work, opts.keys);
    const { meta, wanted } = snap;
    const members = INSTANCE_MEMBERS.map((m) => ({ name: m, size: meta.members[m].size, file: path.join(work, ...m.split("/")) }));

    // Fetch ahead in parallel, hand over in archive order.
    const blobDir = path.join(work, "blobs");
    fs.mkdirSync(blobDir, { mode: 0o700 });
    const fetches: Promise<void>[] = [];
    let started = 0;
    const startNext = () => {
      if (started >= wanted.length) return;
      const w = wanted[started++];
      const p = fetchBlob(repo, w, blobDir, w.sha, snap.blobKeys, opts.signal);
      p.catch(() => {});
      fetches.push(p);
    };
    async function* vault(): AsyncGenerator<VaultFile> {
      for (let i = 0; i < Math.min(BLOB_CONCURRENCY, wanted.length); i++) startNext();
      for (let i = 0; i < wanted.length; i++) {
        opts.signal?.throwIfAborted();
        await fetches[i];
        startNext();
        const file = pathUnder(blobDir, wanted[i].sha);
        yield { sha256: wanted[i].sha, file, size: wanted[i].size, done: () => fs.promises.rm(file, { force: true }) };
      }
    }
    try {
      await writeTarGz(out, meta, members, vault(), { signal: opts.signal });
    } finally {
      await Promise.allSettled(fetches);
    }
    return meta;
  } catch (err) {
    out.destroy(err as Error);
    throw err;
  } finally {
    await removeWorkDir(work);
  }
}

// ----------------------------------------------------------------- prune ---

export interface OffsitePruneResult {
  snapshots: string[];
  blobs: number;
  indexes: number;
  partials: number;
}

/**
 * Remote retention: the job's policy over snapshots (the newest verified
 * one always kept), then the blobs that no kept snapshot names, once they
 * are older than the grace period (a run in progress may be about to name
 * them), and indexes whose snapshot never arrived.
 */
export async function pruneOffsite(repo: OffsiteRepo, policy: RetentionPolicy, now: Date, graceMs = DEFAULT_GRACE_MS): Promise<OffsitePruneResult> {
  const snaps = (await repo.snapshots.list()).filter((o) => isArchiveName(o.name));
  const indexes = new Map<string, SnapshotIndex | null>();
  await eachLimit(snaps, 8, async (o) => void indexes.set(o.name, await readIndex(repo, o.name)));
  const plan = planRetention(
    snaps.map((o) => ({ name: o.name, verified: indexes.get(o.name)?.snapshot_bytes === o.size })),
    policy,
    now,
  );
  for (const name of plan.prune) {
    await repo.snapshots.remove(name);
    if (indexes.get(name)) await repo.indexes.remove(`${name}.json`).catch(() => {});
  }
  const cutoff = now.getTime() - graceMs;
  const needed = new Set<string>();
  for (const name of plan.keep) {
    const idx = indexes.get(name);
    // A kept snapshot whose index cannot be read protects everything: better a full bucket than a broken backup.
    if (!idx) return { snapshots: plan.prune, blobs: 0, indexes: 0, partials: 0 };
    for (const [b] of idx.blobs) needed.add(b);
  }
  let indexesRemoved = 0;
  const present = new Set(snaps.map((o) => o.name));
  for (const o of await repo.indexes.list()) {
    const snap = o.name.replace(/\.json$/, "");
    if (present.has(snap) && !plan.prune.includes(snap)) continue;
    if (Date.parse(o.modifiedAt) >= cutoff) {
      // A run in progress: its blobs are not garbage yet.
      const idx = await readIndex(repo, snap);
      for (const [b] of idx?.blobs ?? []) needed.add(b);
      continue;
    }
    await repo.indexes.remove(o.name).catch(() => {});
    indexesRemoved++;
  }
  let blobsRemoved = 0;
  for (const o of await repo.blobs.list()) {
    if (needed.has(o.name) || Date.parse(o.modifiedAt) >= cutoff) continue;
    await repo.blobs.remove(o.name);
    blobsRemoved++;
  }
  let partials = 0;
  for (const t of [repo.snapshots, repo.blobs]) partials += (await t.sweepPartials(new Date(cutoff))).length;
  return { snapshots: plan.prune, blobs: blobsRemoved, indexes: indexesRemoved, partials };
}

// ---------------------------------------------------------- test & probe ---

/**
 * Settings → Backup → Offsite → Test connection: write, read back and
 * delete a probe object, then read the marker. Names the step that failed.
 */
export async function testOffsite(inst: Instance, loc: S3Location, opts: { timeoutMs?: number } = {}): Promise<{ ok: true; message: string }> {
  const repo = openRepository(loc, { timeoutMs: opts.timeoutMs ?? 10_000 });
  try {
    const key = joinKey(loc.prefix, `coffer-probe-${crypto.randomBytes(6).toString("hex")}`);
    const probe = crypto.randomBytes(32);
    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        const e = explainS3Error(err, loc);
        throw new AppError(e.status, e.code, `${what} failed: ${e.message}`);
      }
    };
    await step("Writing a test object", () => repo.client.send(new PutObjectCommand({ Bucket: loc.bucket, Key: key, Body: probe, ContentLength: probe.length })));
    const back = await step("Reading the test object back", async () => {
      const r = await repo.client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: key }));
      return readBody(r.Body as Readable, 1024);
    });
    await step("Deleting the test object", () => repo.client.send(new DeleteObjectCommand({ Bucket: loc.bucket, Key: key })));
    if (!back.equals(probe)) throw new AppError(502, "OFFSITE_FAILED", "The test object read back with other bytes than were written. Turn on checksum compatibility for this store.");
    const m = await readMarker(repo);
    if (m && m.instance_id !== instanceId(inst)) throw otherInstance(repo, m);
    return { ok: true, message: `Connected: ${describeLocation(loc)} can be written, read and deleted${m ? " and is this instance's repository" : ", and is empty of Coffer backups"}.` };
  } finally {
    closeRepository(repo);
  }
}
