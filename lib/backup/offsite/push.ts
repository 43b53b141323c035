import fs from "node:fs";
import path from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Instance } from "../../instance";
import { AppError } from "../../errors";
import { recipientOf, type AgeEncryptTo } from "../../crypto/age";
import { blobPath } from "../../vault/blobs";
import { pinBlobs } from "../../vault/pins";
import { hashingTap } from "../../util/hashing";
import { collectAfterRequest } from "../../util/gc";
import { removeWorkDir } from "../workdir";
import { freeArchiveName } from "../local/repository";
import { scopeHasInstance, scopeHasVault, type Scope, type Trigger } from "../format/tables";
import { packArchive } from "../format/writer";
import type { DbSnapshot } from "../format/db-snapshot";
import { archiveEncryption, type ArchiveEncryption } from "../format/encryption";
import { describeLocation } from "./location";
import { blobNamer, claimRepository, repositoryIdentity, writeIndex, type OffsiteRepo, type RepoMarker, type SnapshotIndex } from "./repository";
import { BLOB_CONCURRENCY, uploadBlob } from "./transfer";
import { eachLimit } from "../../util/concurrency";

/**
 * Blobs are encrypted to the repository identity too (in recipients mode,
 * as well as to the recipients), so that Coffer can re-read and prove them
 * (rolling verification) without the offline identity. That adds no reader:
 * the identity comes from keys/secret.key, which is offsite only inside the
 * snapshots encrypted to the recipients, and whoever holds it on the server
 * holds the plaintext vault already.
 */
export function blobEncryption(secretKey: Buffer, to: AgeEncryptTo | undefined): AgeEncryptTo | undefined {
  if (!to) return undefined;
  const own = recipientOf(repositoryIdentity(secretKey));
  return "recipients" in to ? { recipients: [...to.recipients, own] } : { recipients: [own] };
}

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
  /** What the job resolved once for its local archive too (null: plain); default: from settings.yaml now. */
  encryption?: ArchiveEncryption | null;
}

/**
 * Send one backup offsite: the blobs the repository lacks, an index, then
 * the snapshot, written last and read back. Nothing of a blob or of the
 * snapshot is held whole in memory.
 */
export async function pushOffsite(inst: Instance, repo: OffsiteRepo, opts: OffsitePushOptions): Promise<OffsitePushResult> {
  const t0 = performance.now();
  if (!scopeHasInstance(opts.scope)) throw new AppError(422, "OFFSITE_SCOPE", "Offsite copies need a backup that includes the database (full or database scope).");
  const encryption = opts.encryption === undefined ? archiveEncryption(inst) : opts.encryption;
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
    const have = new Set((await repo.blobs.list({ signal: opts.signal })).map((o) => o.name));
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
    await writeIndex(repo, index);
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

