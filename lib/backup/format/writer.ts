import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import zlib from "node:zlib";
import { promisify } from "node:util";
import os from "node:os";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Instance } from "../../instance";
import { APP_VERSION } from "../../version";
import { SCHEMA_VERSION } from "../../db/migrations";
import { blobPath, referencedHashes } from "../../vault/blobs";
import { pinBlobs } from "../../vault/pins";
import { LAYOUT } from "../../layout";
import { FORMAT_VERSION, INSTANCE_MEMBERS, MAGIC, META_NAME, blobMember, scopeHasInstance, scopeHasVault, type BackupMeta, type Scope, type Trigger } from "./tables";
import { snapshotDatabase, sha256File, type DbSnapshot } from "./db-snapshot";
import { tarHeader, tarPadding, TAR_END } from "./tar";
import { BlockGzipWriter } from "./pgzip";
import { SeekIndexBuilder, fingerprintTap } from "./seek-index";
import { createEncryptStream, type AgeEncryptTo } from "../../crypto/age";
import { hashingTap } from "../../util/hashing";
import { giveWayToRequests } from "../../http/edge";
import { removeWorkDir } from "../workdir";

/** End `out` and wait until everything written has been flushed (or it failed). */
function endStream(out: Writable, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      out.off("finish", ok);
      reject(err);
    };
    const ok = () => {
      out.off("error", fail);
      resolve();
    };
    if (signal?.aborted) return reject(signal.reason);
    out.once("error", fail);
    out.once("finish", ok);
    out.end();
  });
}

export interface WriteArchiveOptions {
  scope: Scope;
  trigger: Trigger;
  /** Aborts the work (client went away, lease lost); temp files are removed. */
  signal?: AbortSignal;
  /** Called as bytes of input are packed, for progress. */
  onProgress?: (done: number, total: number) => void;
  now?: Date;
  /** A database snapshot the caller took (and removes): a job's local archive and offsite snapshot share one. */
  dbSnapshot?: DbSnapshot;
  /** Records where each block and member starts as the archive is written (its seek index; no byte of the archive changes). */
  index?: SeekIndexBuilder;
}

export interface WrittenArchive {
  meta: BackupMeta;
  /** Compressed bytes written to `out`. */
  bytes: number;
}

const PROBE_BYTES = 64 * 1024;

const deflateRaw = promisify(zlib.deflateRaw);

/**
 * Already-compressed data (JPEG, ZIP, video…) is stored at level 0:
 * recompressing it only costs time. Read and trial-compressed off the event
 * loop: done once per document, synchronously it added up to stalls that
 * requests during a backup could feel.
 */
async function looksCompressed(file: string, probe: Buffer): Promise<boolean> {
  const fh = await fs.promises.open(file, "r");
  try {
    const { bytesRead: n } = await fh.read(probe, 0, PROBE_BYTES, 0);
    if (n < 512) return false;
    const packed = await deflateRaw(probe.subarray(0, n), { level: 1 });
    return packed.length > n * 0.93;
  } finally {
    await fh.close();
  }
}

/**
 * Stream a format-v1 archive of the instance into `out`. The database is
 * snapshotted into data/.tmp first; blobs are read from the vault one chunk
 * at a time. Nothing of the archive, or of any blob, is held in memory.
 */
export async function writeArchive(inst: Instance, out: Writable, opts: WriteArchiveOptions): Promise<WrittenArchive> {
  const { scope, trigger, signal } = opts;
  const workDir = fs.mkdtempSync(path.join(inst.paths.tmp, "backup-"));
  const unpin = pinBlobs();
  try {
    const members: BackupMeta["members"] = {};
    const memberFiles: Omit<InstanceMemberInput, "size">[] = [];
    let tables: Record<string, number> = {};
    let schemaVersion = SCHEMA_VERSION;
    let blobs: string[] = [];

    if (scopeHasInstance(scope)) {
      const snap = opts.dbSnapshot ?? (await snapshotDatabase(inst, workDir));
      signal?.throwIfAborted();
      tables = snap.tables;
      schemaVersion = snap.schemaVersion;
      blobs = snap.referencedBlobs;
      for (const name of INSTANCE_MEMBERS) {
        if (name === LAYOUT.database) {
          members[name] = await sha256File(snap.file);
          memberFiles.push({ name, file: snap.file });
          continue;
        }
        // Small files (settings and two 32-byte keys), read once so the bytes hashed are the bytes written.
        const data = fs.readFileSync(path.join(inst.paths.root, name));
        members[name] = { size: data.length, sha256: crypto.createHash("sha256").update(data).digest("hex") };
        memberFiles.push({ name, data });
      }
    } else {
      blobs = referencedHashes(inst.db) as string[]; // the live database: Coffer wrote every hash in it
    }
    if (!scopeHasVault(scope)) blobs = [];

    const blobSizes = blobs.map((sha) => {
      try {
        return fs.statSync(blobPath(inst.paths, sha)).size;
      } catch {
        throw new Error(`blob ${sha} is referenced by a document but missing from the vault`);
      }
    });
    const vaultBytes = blobSizes.reduce((a, b) => a + b, 0);

    const meta: BackupMeta = {
      magic: MAGIC,
      format_version: FORMAT_VERSION,
      app_version: APP_VERSION,
      schema_version: schemaVersion,
      created_at: (opts.now ?? new Date()).toISOString(),
      scope,
      trigger,
      members,
      vault: { objects: blobs.length, bytes: vaultBytes },
      tables,
    };

    async function* vaultFiles(): AsyncGenerator<VaultFile> {
      for (let i = 0; i < blobs.length; i++) yield { sha256: blobs[i], file: blobPath(inst.paths, blobs[i]), size: blobSizes[i] };
    }
    const bytes = await writeTarGz(out, meta, memberFiles.map((m) => ({ ...m, size: members[m.name].size })), vaultFiles(), opts);
    return { meta, bytes };
  } finally {
    unpin();
    await removeWorkDir(workDir);
  }
}

/** A document file to put in an archive (or, in an export, one fetched into a temp file). */
export interface VaultFile {
  sha256: string;
  file: string;
  size: number;
  /** Called once the file has been written into the archive (an export deletes its temp copy). */
  done?: () => Promise<void> | void;
}

/** An instance member: the database snapshot (a file) or a small file read once (data). */
export interface InstanceMemberInput {
  name: string;
  size: number;
  file?: string;
  data?: Buffer;
}

/**
 * The one writer of format v1's byte stream: meta, instance members, then
 * the vault's blobs, as pigz-style block gzip. Backups and offsite exports
 * both come through here, so an export is the archive a backup would have been.
 */
export async function writeTarGz(
  out: Writable,
  meta: BackupMeta,
  memberFiles: InstanceMemberInput[],
  vault: AsyncIterable<VaultFile>,
  opts: Pick<WriteArchiveOptions, "signal" | "onProgress" | "index">,
): Promise<number> {
  const { signal, index } = opts;
  const gz = new BlockGzipWriter(out, {
    level: 1,
    signal,
    concurrency: Math.min(4, Math.max(2, os.availableParallelism())),
    pace: giveWayToRequests,
    onBlock: index && ((gzipOffset, tarOffset) => index.block(gzipOffset, tarOffset)),
  });
  const mtime = new Date(meta.created_at);
  const header = (name: string, size: number, mode?: number) => {
    index?.member(name, gz.position, size);
    return gz.write(tarHeader(name, size, mtime, mode));
  };
  try {
    await gz.start();

    const total = memberFiles.reduce((a, m) => a + m.size, 0) + meta.vault.bytes;
    let done = 0;
    const addFile = async (name: string, file: string, size: number) => {
      await header(name, size);
      const fh = await fs.promises.open(file, "r");
      try {
        const n = await gz.writeFile(fh, size, (k) => {
          done += k;
          opts.onProgress?.(done, total);
        });
        if (n !== size || (await fh.stat()).size !== size) throw new Error(`${name} changed size while being backed up`);
      } finally {
        await fh.close();
      }
      await gz.write(tarPadding(size));
    };

    const metaBytes = Buffer.from(JSON.stringify(meta, null, 2) + "\n");
    await header(META_NAME, metaBytes.length);
    await gz.write(metaBytes);
    await gz.write(tarPadding(metaBytes.length));
    for (const m of memberFiles) {
      if (m.file) await addFile(m.name, m.file, m.size);
      else {
        await header(m.name, m.data!.length, 0o600);
        await gz.write(m.data!);
        await gz.write(tarPadding(m.data!.length));
        done += m.data!.length;
        opts.onProgress?.(done, total);
      }
    }
    const probe = Buffer.allocUnsafe(PROBE_BYTES);
    for await (const v of vault) {
      await gz.setLevel((await looksCompressed(v.file, probe)) ? 0 : 1);
      await addFile(blobMember(v.sha256), v.file, v.size);
      await v.done?.();
    }
    await gz.setLevel(1);
    await gz.write(TAR_END);
    await gz.finish();
    await endStream(out, signal);
  } finally {
    gz.close();
  }
  return gz.bytesOut;
}

export interface PackedArchive extends WrittenArchive {
  /** SHA-256 of the bytes written to `out` (the ciphertext, when encrypted): what verification compares. */
  sha256: string;
  /** The archive's seek index (the sidecar's bytes) when one was asked for and could be kept. */
  seekIndex: Buffer | null;
}

/**
 * An archive as it is stored or downloaded: the v1 .tar.gz, wrapped in an
 * age file when `encryptTo` is given, with the SHA-256 of the bytes written.
 */
export async function packArchive(
  inst: Instance,
  out: Writable,
  opts: WriteArchiveOptions & { encryptTo?: AgeEncryptTo | null; /** Also build its seek index. */ seekIndex?: boolean },
): Promise<PackedArchive> {
  const m = hashingTap();
  const enc = opts.encryptTo ? await createEncryptStream(opts.encryptTo) : null;
  const index = opts.seekIndex ? new SeekIndexBuilder() : undefined;
  // The index names the stored bytes (the ciphertext, when encrypted) by their ends: taken after the hash.
  const fp = index ? fingerprintTap() : null;
  const stored = fp ? [m, fp] : [m];
  const piping = enc ? pipeline([enc, ...stored, out]) : pipeline([...stored, out]);
  try {
    const w = await writeArchive(inst, enc ?? m, { ...opts, index });
    await piping;
    return { ...w, bytes: m.bytes(), sha256: m.digest(), seekIndex: index?.finish(fp!.fingerprint(), enc ? "age" : "plain") ?? null };
  } catch (err) {
    (enc ?? m).destroy();
    await piping.catch(() => {});
    throw err;
  }
}
