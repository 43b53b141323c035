import crypto from "node:crypto";
import { z } from "zod";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Instance } from "../../instance";
import { instanceId } from "../../instance";
import { AppError } from "../../errors";
import { isArchiveName, isEncryptedArchiveName, isScope, type Scope } from "../format/tables";
import { S3Target, s3Client } from "./s3";
import { type S3Location } from "./location";
import { configuredLocation, describeLocation } from "./location";
import { eachLimit } from "../../util/concurrency";

/**
 * The offsite repository (docs/architecture.md#the-offsite-repository): one per instance under
 * s3://bucket/prefix/. Every run after the first is incremental: a blob is
 * uploaded only if the repository lacks it, and the snapshot (a db-scope
 * archive: database, settings, keys) is written last, so a snapshot only
 * ever names blobs already stored. Departure from the original design: each snapshot has
 * an index object (indexes/<snapshot>.json) listing the blob objects it
 * names. With recipients encryption Coffer cannot read its own snapshots,
 * and retention has to know which blobs a kept snapshot needs.
 */

export const MARKER_NAME = "coffer-repo.json";
export const REPO_MAGIC = "coffer-repo";
/** Blob objects: <aa>/<sha256> in clear, <aa>/<keyed hash>.age when encrypted. */
export const BLOB_OBJECT_RE = /^[0-9a-f]{2}\/[0-9a-f]{64}(\.age)?$/;
const INDEX_RE = /^coffer_[a-z]+_\d{8}_\d{6}Z(?:_\d{1,4})?\.tar\.gz(\.age)?\.json$/;
/** Objects at the repository's top: its marker, and Test connection's probe. */
const TOP_RE = /^(coffer-repo\.json|coffer-probe-[0-9a-f]{12})$/;
/** The largest marker or index Coffer reads (an index of a million blobs is about 90 MB). */
const MARKER_MAX_BYTES = 64 * 1024;
const INDEX_MAX_BYTES = 128 * 1024 * 1024;

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

/** The repository's parts: every SDK call goes through one of these targets. */
export interface OffsiteRepo {
  loc: S3Location;
  client: S3Client;
  top: S3Target;
  snapshots: S3Target;
  blobs: S3Target;
  indexes: S3Target;
}

export function openRepository(loc: S3Location, opts: { timeoutMs?: number } = {}): OffsiteRepo {
  const client = s3Client(loc, opts);
  return {
    loc,
    client,
    top: new S3Target(client, loc, "", TOP_RE),
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

export async function writeMarker(repo: OffsiteRepo, marker: RepoMarker): Promise<void> {
  await repo.top.putSmall(MARKER_NAME, Buffer.from(JSON.stringify(marker, null, 2) + "\n"));
}


export async function readMarker(repo: OffsiteRepo): Promise<RepoMarker | null> {
  const data = await repo.top.readSmall(MARKER_NAME, MARKER_MAX_BYTES);
  if (!data) return null;
  try {
    const m = JSON.parse(data.toString("utf8")) as RepoMarker;
    if (m.magic === REPO_MAGIC && typeof m.instance_id === "string") return m;
  } catch {
    /* below */
  }
  throw new AppError(409, "OFFSITE_NOT_COFFER", `${describeLocation(repo.loc)} has a ${MARKER_NAME} that is not a Coffer repository's. Choose another prefix.`);
}

export function otherInstance(repo: OffsiteRepo, m: RepoMarker): AppError {
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
  await writeMarker(repo, marker);
  return marker;
}

/** Take over a repository another instance made (this server replaces it). */
export async function adoptRepository(repo: OffsiteRepo, inst: Instance): Promise<RepoMarker> {
  const m = await readMarker(repo);
  const now = new Date().toISOString();
  const marker: RepoMarker = m
    ? { ...m, instance_id: instanceId(inst), adopted_at: now }
    : { magic: REPO_MAGIC, version: 1, instance_id: instanceId(inst), created_at: now, encryption: "off" };
  await writeMarker(repo, marker);
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

export async function writeIndex(repo: OffsiteRepo, index: SnapshotIndex): Promise<void> {
  await repo.indexes.putSmall(`${index.snapshot}.json`, Buffer.from(JSON.stringify(index)));
}

export async function readIndex(repo: OffsiteRepo, name: string, signal?: AbortSignal): Promise<SnapshotIndex | null> {
  const data = await repo.indexes.readSmall(`${name}.json`, INDEX_MAX_BYTES, { signal });
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
    const idx = await readIndex(repo, o.name, signal);
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

