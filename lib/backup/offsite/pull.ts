import fs from "node:fs";
import path from "node:path";
import type { Writable } from "node:stream";
import type { Instance } from "../../instance";
import { AppError } from "../../errors";
import type { AgeKeys } from "../../crypto/age";
import { openDatabase } from "../../db/connection";
import { removeWorkDir } from "../workdir";
import { blobPathIn, documentHashes, pathUnder, writeNewFileUnder } from "../restore/payload";
import { LAYOUT } from "../../layout";
import { INSTANCE_MEMBERS, isArchiveName, isEncryptedArchiveName, type BackupMeta } from "../format/tables";
import { writeTarGz, type VaultFile } from "../format/writer";
import { ArchiveError, readArchive } from "../format/reader";
import { restoreCapBytes, stageInto, type RestorePreview } from "../restore/staging";
import type { BackupSource } from "../restore/browse";
import { transferStopped } from "./s3";
import { describeLocation } from "./location";
import { blobNamer, listOffsiteSnapshots, readIndex, repositoryIdentity, type OffsiteRepo, type SnapshotIndex } from "./repository";
import { BLOB_CONCURRENCY, fetchBlob } from "./transfer";
import { eachLimit } from "../../util/concurrency";

/**
 * Reading a snapshot back out of the bucket (a restore's staging, an
 * export). Everything read here is untrusted input (README, Security): the
 * archive goes through the archive reader, cut at the size its index
 * declares; the database's document hashes are checked before any of them
 * becomes an object name or a path; encryption is judged by content; every
 * file is written through the payload writer.
 */

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
  opts: { admit?: (meta: BackupMeta) => void; signal?: AbortSignal; /** The most bytes written in all (the staging cap). */ maxBytes?: number } = {},
): Promise<UnpackedSnapshot> {
  if (!isArchiveName(name)) throw new AppError(404, "NOT_FOUND", `${name} is not a snapshot name.`);
  const index = await readIndex(repo, name, opts.signal);
  if (!index) throw new AppError(404, "NOT_FOUND", `There is no snapshot ${name} in ${describeLocation(repo.loc)}.`);
  const full = (m: BackupMeta, objects: number, bytes: number): BackupMeta => ({ ...m, scope: index.scope === "db" ? "db" : "full", vault: { objects, bytes } });
  let declared: BackupMeta | undefined;
  const summary = await readArchive(await repo.snapshots.open(name, { maxBytes: index.snapshot_bytes, signal: opts.signal }), {
    keys,
    maxBytes: opts.maxBytes,
    // Before a byte is written: the database, settings and keys, and the document files the index lists.
    // The space admitted is the sum of the blob sizes the index lists, each enforced while it streams, not the index's own total.
    onMeta: (m) => {
      declared = m;
      opts.admit?.(full(m, index.blobs.length, index.blobs.reduce((a, [, n]) => a + n, 0)));
    },
    onMember: (member, content) => {
      // A snapshot archive carries the instance files only (its blobs are objects of their own); each is cut at
      // the size its meta declares, so a bucket cannot make a small object unpack into a full disk.
      if (!(INSTANCE_MEMBERS as readonly string[]).includes(member)) {
        throw new ArchiveError("ARCHIVE_BAD_MEMBER", `The snapshot ${name} holds ${member.slice(0, 80)}, which a snapshot archive never carries: the repository has been altered. Nothing was restored.`);
      }
      return writeNewFileUnder(dir, member, content, { maxBytes: declared?.members[member]?.size ?? 0 });
    },
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
    throw new ArchiveError("DB_CORRUPT", `The database or keys in the snapshot ${name} cannot be read: ${(err as Error).message}.`, 422, { cause: err });
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
    if (signal?.aborted) throw transferStopped(signal.reason);
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
    const snap = await unpackSnapshot(repo, name, work, opts.keys, { signal: opts.signal });
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
        if (opts.signal?.aborted) throw transferStopped(opts.signal.reason);
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

/**
 * Restore from the bucket through the same staging as an upload: the
 * snapshot archive goes through the archive reader into the staging
 * payload, the space its meta declares is admitted, the blobs are fetched
 * straight into the payload's vault (in parallel, each checked against its
 * hash, a missing or damaged object named), and stageInto's checks (the
 * database, its blobs, settings, keys) and preview follow, as for any backup.
 */
export async function stageOffsiteSnapshot(inst: Instance, repo: OffsiteRepo, name: string | null, opts: { keys?: AgeKeys; owner?: string; signal?: AbortSignal } = {}): Promise<RestorePreview> {
  const snapshot = name ?? (await newestSnapshot(repo, opts.signal));
  return stageInto(inst, opts.owner ?? "local", () => {}, async ({ payload, id, admit }) => {
    const cap = restoreCapBytes(inst, process.env, id);
    const snap = await unpackSnapshot(repo, snapshot, payload, opts.keys, { admit: (meta) => admit(meta, cap), signal: opts.signal, maxBytes: cap });
    await fetchSnapshotBlobs(repo, snap, path.join(payload, LAYOUT.vault), opts.signal);
    return { meta: snap.meta, warnings: snap.warnings, encrypted: snap.encrypted };
  });
}

export async function newestSnapshot(repo: OffsiteRepo, signal?: AbortSignal): Promise<string> {
  const snaps = (await listOffsiteSnapshots(repo, signal)).filter((s) => s.verified);
  if (!snaps.length) throw new AppError(404, "NOT_FOUND", "This repository has no complete snapshot to restore.");
  return snaps[0].name;
}

/**
 * An offsite snapshot as a source of single documents: browsing reads the
 * snapshot archive (database, settings, keys; never a blob) into the cache,
 * and each chosen document the vault lacks is one blob GET, checked against
 * its hash like every blob read from a bucket. The caller owns `repo`.
 */
export function offsiteSource(repo: OffsiteRepo, name: string): BackupSource {
  if (!isArchiveName(name)) throw new AppError(404, "NOT_FOUND", `${name.slice(0, 80)} is not a snapshot name.`);
  let index: Promise<SnapshotIndex> | undefined;
  const indexOf = (signal?: AbortSignal) =>
    (index ??= readIndex(repo, name, signal).then((i) => {
      // Members browse snapshots too: the bucket's address is not theirs to learn.
      if (!i) throw new AppError(404, "NOT_FOUND", `There is no complete snapshot ${name} in the offsite repository.`);
      return i;
    }));
  return {
    name,
    kind: "offsite",
    version: async () => {
      const i = await indexOf();
      return `${i.snapshot_sha256}:${i.snapshot_bytes}`;
    },
    async unpackDatabase(payload, { keys, cap, admit, signal }) {
      const snap = await unpackSnapshot(repo, name, payload, keys, {
        signal,
        maxBytes: cap,
        admit: (meta) => {
          const bytes = INSTANCE_MEMBERS.reduce((a, m) => a + (meta.members[m]?.size ?? 0), 0);
          if (bytes > cap) throw new ArchiveError("TOO_LARGE", `This snapshot's database is larger than there is room for in staging.`, 413);
          admit(bytes);
        },
      });
      return { meta: snap.meta, encrypted: snap.encrypted, has_vault: (await indexOf(signal)).scope !== "db" };
    },
    async fetchFiles(payload, need, work, { keys, signal }) {
      const i = await indexOf(signal);
      const encrypted = i.encryption !== "off";
      const secretKey = fs.readFileSync(pathUnder(payload, LAYOUT.secretKey));
      const nameOf = blobNamer(secretKey, encrypted);
      const listed = new Set(i.blobs.map(([obj]) => obj));
      const blobKeys = encrypted ? { identities: [...(keys?.identities ?? []), repositoryIdentity(secretKey)] } : null;
      const wanted = [...need].map(([sha, size]) => ({ sha, size, obj: nameOf(sha) }));
      const unlisted = wanted.filter((w) => !listed.has(w.obj)).length;
      if (unlisted) throw new AppError(422, "OFFSITE_CORRUPT", `The snapshot ${name} names ${unlisted} document file(s) its index does not list; the repository is inconsistent. Nothing was restored.`);
      // Cut at the size the checked database gives each document, and checked against its hash as it arrives.
      await eachLimit(wanted, BLOB_CONCURRENCY, async (w) => {
        if (signal?.aborted) throw transferStopped(signal.reason);
        await fetchBlob(repo, w, work, w.sha, blobKeys, signal);
      });
      return new Set(need.keys());
    },
  };
}
