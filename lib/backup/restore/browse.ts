import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Transform, pipeline, type Readable } from "node:stream";
import { z } from "zod";
import type { Instance } from "../../instance";
import { AppError, notFound } from "../../errors";
import { openDatabase, type DB } from "../../db/connection";
import type { User } from "../../auth/users";
import type { AgeKeys } from "../../crypto/age";
import { SHA256_RE } from "../../vault/blobs";
import { cleanDocumentName } from "../../vault/documents";
import { processWide } from "../../util/process-wide";
import { PRIVATE_FILE_MODE } from "../../util/modes";
import { formatBytes } from "../../format";
import { LAYOUT } from "../../layout";
import { readArchive, ArchiveError } from "../format/reader";
import { BLOB_MEMBER_RE, blobMember, isArchiveName, scopeHasInstance, scopeHasVault, type BackupMeta } from "../format/tables";
import { SeekableArchive, SeekMiss, type IndexVerdict, type SeekableFile } from "../format/seek";
import { currentTarget } from "../local/repository";
import type { BackupTarget, ByteRange } from "../local/target";
import { BROWSE_RECORD, busyStaging, checkBackupDatabase, claimStagingDir, reserveStaging, restoreCapBytes } from "./staging";
import { writeNewFileUnder } from "./payload";
import { hashingTap } from "../../util/hashing";

/**
 * Browsing a backup (docs/architecture.md#restoring-single-documents): the
 * documents its database holds, read from the archive up to the end of its
 * coffer.db member and no further, checked like a staged database, and kept
 * in `.staging/<id>/` for BROWSE_TTL_MS so the next look (or a restore of
 * chosen documents) does not read the archive again.
 */

export const BROWSE_TTL_MS = 10 * 60 * 1000;

/** More documents than this are not listed (each is checked and compared with now, in memory). */
export const MAX_BROWSE_DOCUMENTS = 200_000;

/** What a source's database turned out to be, once unpacked. */
export interface UnpackedDatabase {
  meta: BackupMeta;
  encrypted: boolean;
  /** The source can bring back document files (a full archive, a full snapshot's blobs, the vault a point in time kept). */
  has_vault: boolean;
}

/**
 * Where a backup comes from, in the words of restoring documents (as restic's
 * backends or Litestream's ReplicaClient): a stored archive, an offsite
 * snapshot, a point in time of the continuous replica. Browsing and restoring
 * chosen documents are written once, against this.
 */
export interface BackupSource {
  /** What the backup is called (validated by the source): shown, audited, part of the cache key. */
  readonly name: string;
  readonly kind: "stored" | "offsite" | "point_in_time";
  /** What changes when the backup does (size, time, hash): part of the cache key. */
  version(): Promise<string>;
  /**
   * Write the backup's coffer.db as `payload/coffer.db` (plus whatever the source needs later under
   * `payload`, such as an offsite snapshot's keys), calling `admit` with the bytes it will write before
   * it writes them. Nothing more of the backup is read than that needs.
   */
  unpackDatabase(payload: string, opts: { keys?: AgeKeys; /** The most bytes it may unpack in all. */ cap: number; admit: (bytes: number) => void; signal?: AbortSignal }): Promise<UnpackedDatabase>;
  /**
   * Write each needed document file (sha256 → size, as the checked database says) as `work/<sha256>`,
   * each checked against its hash and size before it counts; the hashes it wrote. `payload` is what
   * unpackDatabase left.
   */
  fetchFiles(payload: string, need: ReadonlyMap<string, number>, work: string, opts: { keys?: AgeKeys; signal?: AbortSignal }): Promise<Set<string>>;
}

/** A damaged document file in a backup, in the words of a restore of chosen documents. */
export const fileMismatch = (backup: string, what = "does not match its SHA-256 (or size)") =>
  new AppError(422, "DOCUMENT_HASH_MISMATCH", `A document file in ${backup} ${what}: the backup is damaged. Nothing was restored.`);

/** A stored backup by name: only archive names, never a path. */
export async function storedSource(inst: Instance, name: string, target: BackupTarget = currentTarget(inst)): Promise<BackupSource> {
  if (!isArchiveName(name)) throw notFound("That backup");
  const st = await target.stat(name);
  if (!st) throw notFound("That backup");
  return archiveSource(name, {
    version: async () => `${st.size}:${st.modifiedAt}`,
    open: (range) => target.open(name, range),
    seekable: async () => {
      const now = await target.stat(name);
      return now && { size: now.size, openIndex: () => target.openSidecar(name) };
    },
  });
}

/** An archive file as archiveSource reads it. */
export interface ArchiveFile {
  /** What changes when the file does: part of the browse cache's key. */
  version(): Promise<string>;
  /** The file's bytes, or a range of them. */
  open(range?: ByteRange): Promise<Readable>;
  /** Its size now and its seek index (sidecar), for reading single documents by seeking; without it, every read is one pass. */
  seekable?(): Promise<Omit<SeekableFile, "open"> | null>;
}

/** How the last fetchFiles of each backup read it (the tests' proof that a seek read little). */
export interface FetchStats {
  /** Bytes of the archive read, all opens together. */
  archive_bytes: number;
  /** Bytes of its seek index read. */
  index_bytes: number;
  /** What became of the archive's seek index; "skipped": usable, but one pass costs less for these files. */
  index: IndexVerdict | "skipped" | null;
  /** Files read by seeking through the index, and by the one-pass read (none, no index, or what a seek missed). */
  by_seek: number;
  by_pass: number;
  /** Why seeks did not give a file (a header other than the index said, bytes that do not inflate, a hash): those went to the one-pass read. */
  misses: string[];
}
export const lastFetch = () => processWide("browseLastFetch", () => new Map<string, FetchStats>());

/** `open`, with every byte it gives counted into `stats`. */
function countingOpen(open: ArchiveFile["open"], stats: FetchStats): ArchiveFile["open"] {
  return async (range) => {
    const raw = await open(range);
    const count = new Transform({
      transform(chunk: Buffer, _e, cb) {
        stats.archive_bytes += chunk.length;
        cb(null, chunk);
      },
    });
    // pipeline: a reader that stops early (destroys the counter) closes the file too.
    pipeline(raw, count, () => {});
    return count;
  };
}

/** Any archive file as a source (a stored one, or the CLI's FILE): the database read up to coffer.db; files by seeking where its index leads, the rest in one pass. */
export function archiveSource(name: string, file: ArchiveFile): BackupSource {
  return {
    name,
    kind: "stored",
    version: file.version,
    async unpackDatabase(payload, { keys, cap, admit, signal }) {
      // No seek here: format v1 puts coffer.db right after the meta, so the one-pass read already stops where a seek would start.
      const stream = await file.open();
      const stop = () => stream.destroy(new AppError(400, "CLIENT_GONE", "Stopped: nothing was read."));
      signal?.addEventListener("abort", stop, { once: true });
      let wrote = false;
      try {
        const summary = await readArchive(stream, {
          keys,
          maxBytes: cap,
          onMeta: (meta) => {
            if (!scopeHasInstance(meta.scope)) throw new AppError(422, "BACKUP_NO_DATABASE", `${name} is a ${meta.scope} backup: it holds document files but no database, so there is no list of documents to browse.`);
            admit(meta.members[LAYOUT.database]?.size ?? 0);
          },
          onMember: async (member, content) => {
            if (member !== LAYOUT.database) {
              content.resume();
              return;
            }
            await writeNewFileUnder(payload, LAYOUT.database, content);
            wrote = true;
          },
          // Format v1 puts coffer.db right after the meta: the rest of the archive is never read.
          stopAfter: (member) => member === LAYOUT.database,
        });
        if (!wrote) throw new ArchiveError("ARCHIVE_MISSING_MEMBER", `${name} has no database (coffer.db).`);
        lastRead().set(name, summary.compressedBytes);
        return { meta: summary.meta, encrypted: summary.encryption !== null, has_vault: scopeHasVault(summary.meta.scope) };
      } finally {
        signal?.removeEventListener("abort", stop);
      }
    },
    async fetchFiles(_payload, need, work, { keys, signal }) {
      const stats: FetchStats = { archive_bytes: 0, index_bytes: 0, index: null, by_seek: 0, by_pass: 0, misses: [] };
      lastFetch().set(name, stats);
      const open = countingOpen((range) => file.open(range), stats);
      const fetched = new Set<string>();
      const seekable = await file.seekable?.();
      if (seekable) await fetchBySeeking(name, { ...seekable, open }, need, work, fetched, stats, { keys, signal });
      if (fetched.size === need.size) return fetched;
      const stream = await open();
      const stop = () => stream.destroy(new AppError(400, "CLIENT_GONE", "Stopped: nothing was restored."));
      signal?.addEventListener("abort", stop, { once: true });
      const before = fetched.size;
      try {
        // One pass through the archive, stopping once the last needed file has been read.
        await readArchive(stream, {
          keys,
          onMember: async (member, content) => {
            const sha = BLOB_MEMBER_RE.exec(member)?.[2];
            if (!sha || !need.has(sha) || fetched.has(sha)) {
              content.resume();
              return;
            }
            await writeCheckedFile(work, sha, need.get(sha)!, content, name);
            fetched.add(sha);
          },
          stopAfter: () => fetched.size === need.size,
        });
      } catch (err) {
        if (err instanceof AppError && err.code === "CHECKSUM_MISMATCH") throw new AppError(422, "DOCUMENT_HASH_MISMATCH", `${err.message} Nothing was restored.`);
        throw err;
      } finally {
        stats.by_pass = fetched.size - before;
        signal?.removeEventListener("abort", stop);
      }
      return fetched;
    },
  };
}

/**
 * Fetch what the archive's seek index can lead to (format/seek.ts), adding each file written to
 * `fetched`. Every file is checked as in the one-pass read (its header names it, its hash and size);
 * one that does not check out is left for the one-pass read, which gives the real answer (a damaged
 * archive's DOCUMENT_HASH_MISMATCH) or the file. Only a key that does not fit, the caller leaving, or
 * a failure to write (a full disk) stops it.
 */
async function fetchBySeeking(
  name: string,
  file: SeekableFile,
  need: ReadonlyMap<string, number>,
  work: string,
  fetched: Set<string>,
  stats: FetchStats,
  { keys, signal }: { keys?: AgeKeys; signal?: AbortSignal },
): Promise<void> {
  const names = new Map([...need.keys()].map((sha) => [blobMember(sha), sha]));
  const { archive, index, indexBytes } = await SeekableArchive.open(file, (member) => names.has(member), keys);
  stats.index_bytes = indexBytes;
  stats.index = index;
  if (!archive) return;
  const { runs } = archive.plan(names.keys());
  // Many documents spread over the archive: reading it once costs less than seeking to each.
  if (archive.cost(runs) > file.size / 2) {
    stats.index = "skipped";
    return;
  }
  const stopped = () => signal?.aborted && new AppError(400, "CLIENT_GONE", "Stopped: nothing was restored.");
  for (const run of runs) {
    try {
      for await (const { member, content } of archive.read(run, signal)) {
        const sha = names.get(member.name)!;
        // The index's size must be the database's: otherwise the one-pass read says what is wrong.
        if (member.size !== need.get(sha)) {
          content.destroy();
          stats.misses.push(`the index gives ${member.name} ${member.size} bytes, the database ${need.get(sha)}`);
          break;
        }
        try {
          await writeCheckedFile(work, sha, member.size, content, name);
          fetched.add(sha);
          stats.by_seek++;
        } catch (err) {
          fs.rmSync(path.join(work, sha), { force: true });
          if (stopped()) throw stopped();
          // A hash that does not match: the one-pass read decides whether the archive or the seek was wrong.
          if (err instanceof AppError && err.code === "DOCUMENT_HASH_MISMATCH") {
            stats.misses.push(`${member.name} read by seeking does not match its hash`);
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      if (stopped()) throw stopped();
      if (!(err instanceof SeekMiss)) throw err;
      // The rest of this run is for the one-pass read.
      stats.misses.push(err.message);
    }
  }
}

/** Write one document file from a backup as `work/<sha>`, cut at its size and checked against its hash. */
export async function writeCheckedFile(work: string, sha: string, size: number, content: Readable, backup: string): Promise<void> {
  const tap = hashingTap();
  await writeNewFileUnder(work, sha, content, { through: [tap], maxBytes: size, tooLarge: () => fileMismatch(backup, "is larger than its database says") });
  if (tap.digest() !== sha || tap.bytes() !== size) throw fileMismatch(backup);
}

export type DocumentState = "same" | "changed" | "deleted_since";

/** One document as the backup's database holds it (every field checked: it is outside input). */
export interface BackupDocument {
  id: number;
  name: string;
  owner_id: number;
  /** The owner's username in the backup (null when the backup's users table lacks the row). */
  owner: string | null;
  /** When the backup's owner account was made: with the id and username, what says it is the same person now. */
  owner_created_at: string | null;
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
  /** It was in the trash when the backup was taken. */
  in_trash: boolean;
  /** Against the live instance: not there now (or in the trash) is deleted_since; same id with another name or content is changed. */
  state: DocumentState;
}

export interface BrowseResult {
  backup: string;
  kind: BackupSource["kind"];
  created_at: string;
  scope: string;
  encrypted: boolean;
  /** The backup holds the document files (full scope); a db-scope backup can bring back only those whose file is still in the vault. */
  has_vault: boolean;
  documents: BackupDocument[];
}

interface CacheEntry extends UnpackedDatabase {
  id: string;
  expires: number;
  /** Restores reading from it now: an expired entry in use is dropped from the index but removed only when they are done. */
  users: number;
  removeWhenFree?: boolean;
}

const cache = () => processWide("browseCache", () => new Map<string, CacheEntry>());
/** Salts the cache key so a key's fingerprint means nothing outside this process (it is never written down). */
const salt = () => processWide("browseSalt", () => crypto.randomBytes(32));

function cacheKey(inst: Instance, source: BackupSource, version: string, keys: AgeKeys | undefined): string {
  const h = crypto.createHmac("sha256", salt());
  h.update(JSON.stringify([inst.paths.root, source.kind, source.name, version]));
  // A cached database of an encrypted backup answers only the key that opened it.
  h.update(JSON.stringify([keys?.passphrase ?? null, (keys?.identities ?? []).map((i) => i.toString("hex"))]));
  return h.digest("hex");
}

const rowSchema = z.object({
  id: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  owner_id: z.number().int(),
  owner: z.string().max(200).nullable(),
  owner_created_at: z.string().max(64).nullable(),
  name: z.string().max(4096),
  content_type: z.string().max(4096).nullable(),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(SHA256_RE),
  created_at: z.string().max(64).nullable(),
  deleted_at: z.string().max(64).nullable(),
});

const safeName = (raw: string) => {
  try {
    return cleanDocumentName(raw);
  } catch {
    return "document";
  }
};
const isoOr = (raw: string | null, fallback: string) => (raw && !Number.isNaN(Date.parse(raw)) ? new Date(Date.parse(raw)).toISOString() : fallback);

/** The documents of a checked backup database (its rows are validated one by one; a bad one refuses the backup). */
function readBackupDocuments(db: DB, createdAt: string): Omit<BackupDocument, "state">[] {
  const cols = new Set((db.prepare("SELECT name FROM pragma_table_info('documents')").pluck().all() as string[]));
  const trashed = cols.has("deleted_at") ? "d.deleted_at" : "NULL";
  const count = db.prepare("SELECT count(*) FROM documents").pluck().get() as number;
  if (count > MAX_BROWSE_DOCUMENTS) {
    throw new AppError(422, "BACKUP_TOO_MANY_DOCUMENTS", `This backup holds ${count} documents, more than Coffer lists (${MAX_BROWSE_DOCUMENTS}). Restore it whole to a scratch instance instead.`);
  }
  // Subqueries, not a join: a users table without a unique id (a backup's is untrusted) cannot repeat a document.
  const rows = db
    .prepare(
      `SELECT d.id, d.owner_id, (SELECT username FROM users WHERE id = d.owner_id LIMIT 1) AS owner, (SELECT created_at FROM users WHERE id = d.owner_id LIMIT 1) AS owner_created_at,
              d.name, d.content_type, d.size, d.sha256, d.created_at, ${trashed} AS deleted_at FROM documents d ORDER BY d.id`,
    )
    .all();
  const seen = new Set<number>();
  return rows.map((raw) => {
    const r = rowSchema.safeParse(raw);
    if (!r.success) {
      const i = r.error.issues[0];
      if (i.path[0] === "sha256") throw new ArchiveError("DB_BAD_HASH", "The backup's database names a document whose content hash is not a SHA-256; it has been altered. Nothing was read from it.");
      throw new ArchiveError("DB_CORRUPT", `The backup's database has a document row Coffer cannot read (${i.path.join(".")}: ${i.message}).`);
    }
    const d = r.data;
    if (seen.has(d.id)) throw new ArchiveError("DB_CORRUPT", `The backup's database has two documents with id ${d.id}; it was not made by Coffer, or was changed since.`);
    seen.add(d.id);
    return {
      id: d.id,
      name: safeName(d.name),
      owner_id: d.owner_id,
      owner: d.owner,
      owner_created_at: d.owner_created_at,
      content_type: d.content_type ?? "application/octet-stream",
      size: d.size,
      sha256: d.sha256,
      created_at: isoOr(d.created_at, createdAt),
      in_trash: d.deleted_at !== null,
    };
  });
}

/** Same, changed or deleted since, against the live rows (a trashed live row is deleted since); one statement for a whole list. */
function stateAgainstNow(inst: Instance): (doc: Omit<BackupDocument, "state">) => DocumentState {
  const row = inst.db.prepare("SELECT name, sha256, deleted_at FROM documents WHERE id = ?");
  return (doc) => {
    const live = row.get(doc.id) as { name: string; sha256: string; deleted_at: string | null } | undefined;
    if (!live || live.deleted_at !== null) return "deleted_since";
    return live.name === doc.name && live.sha256 === doc.sha256 ? "same" : "changed";
  };
}

/**
 * Whether the backup's owner of `doc` is this live user: the same id, username
 * (as SQLite compares them, without case) and account creation time, so a new
 * account that happens to get a removed one's id and name is someone else.
 */
export function sameUser(user: Pick<User, "id" | "username" | "created_at">, doc: Pick<BackupDocument, "owner_id" | "owner" | "owner_created_at">): boolean {
  return doc.owner_id === user.id && doc.owner !== null && doc.owner.toLowerCase() === user.username.toLowerCase() && doc.owner_created_at === user.created_at;
}

/** Whether `viewer` may see a backup's document: an admin any; a member those the backup says are theirs. */
export function mayTouch(viewer: User, doc: Pick<BackupDocument, "owner_id" | "owner" | "owner_created_at">): boolean {
  return viewer.role === "admin" || sameUser(viewer, doc);
}

/** The staging directory of a cached entry (payload/ holds what the source unpacked). */
const entryDir = (inst: Instance, e: CacheEntry) => path.join(inst.paths.staging, e.id);

function dropEntry(inst: Instance, key: string, e: CacheEntry): void {
  cache().delete(key);
  if (e.users > 0) e.removeWhenFree = true;
  else fs.rmSync(entryDir(inst, e), { recursive: true, force: true });
}

/** A cached database, held until `release`: it is not removed under a restore that is reading it. */
export interface HeldDatabase {
  entry: CacheEntry;
  /** The unpacked payload (coffer.db, and what the source keeps beside it). */
  payload: string;
  release(): void;
}

/** Unpack the backup's coffer.db (and nothing after it) into a fresh staging directory, or reuse a cached one; held until released. */
export async function holdDatabase(inst: Instance, source: BackupSource, keys: AgeKeys | undefined, opts: { signal?: AbortSignal; now?: number } = {}): Promise<HeldDatabase> {
  const now = opts.now ?? Date.now();
  const key = cacheKey(inst, source, await source.version(), keys);
  const hold = (entry: CacheEntry): HeldDatabase => {
    entry.users++;
    busyStaging().add(entry.id);
    // The staging sweep goes by this record: a database held now is not swept for another BROWSE_TTL_MS.
    fs.writeFileSync(path.join(entryDir(inst, entry), BROWSE_RECORD), JSON.stringify({ backup: source.name, expires_at: new Date(Math.max(entry.expires, now + BROWSE_TTL_MS)).toISOString() }), { mode: PRIVATE_FILE_MODE });
    let released = false;
    return {
      entry,
      payload: path.join(entryDir(inst, entry), "payload"),
      release: () => {
        if (released) return;
        released = true;
        entry.users--;
        if (entry.users > 0) return;
        busyStaging().delete(entry.id);
        if (entry.removeWhenFree) fs.rmSync(entryDir(inst, entry), { recursive: true, force: true });
      },
    };
  };
  const hit = cache().get(key);
  if (hit) {
    if (hit.expires > now && fs.existsSync(path.join(entryDir(inst, hit), "payload", LAYOUT.database))) return hold(hit);
    dropEntry(inst, key, hit);
  }
  // The same backup asked for by several at once is unpacked once (a member cannot multiply a download or a rebuild).
  let job = unpacking().get(key);
  if (!job) {
    const stop = new AbortController();
    const started: Unpacking = { done: unpackDatabase(inst, source, key, keys, stop.signal, now), stop, waiting: 0 };
    unpacking().set(key, started);
    void started.done.finally(() => unpacking().get(key) === started && unpacking().delete(key)).catch(() => {});
    job = started;
  }
  return hold(await waitForUnpack(key, job, opts.signal));
}

/** One unpack of a backup's database, shared by everyone who asked for it while it ran. */
interface Unpacking {
  done: Promise<CacheEntry>;
  /** Aborts the unpack: only when the last caller waiting for it has left. */
  stop: AbortController;
  waiting: number;
}

const unpacking = () => processWide("browseUnpacking", () => new Map<string, Unpacking>());

/**
 * Wait for a shared unpack. A caller who leaves is told CLIENT_GONE at once; the unpack
 * stops only when nobody is waiting any more (the first to ask does not own it), and
 * whoever asks after that starts a new one. A caller without a signal (the CLI) never leaves.
 */
function waitForUnpack(key: string, job: Unpacking, signal: AbortSignal | undefined): Promise<CacheEntry> {
  job.waiting++;
  if (!signal) return job.done;
  return new Promise((resolve, reject) => {
    const leave = () => {
      if (--job.waiting === 0) {
        if (unpacking().get(key) === job) unpacking().delete(key);
        job.stop.abort();
      }
      reject(new AppError(400, "CLIENT_GONE", "Stopped: nothing was read."));
    };
    if (signal.aborted) return leave();
    signal.addEventListener("abort", leave, { once: true });
    job.done.then(resolve, reject).finally(() => signal.removeEventListener("abort", leave));
  });
}

async function unpackDatabase(inst: Instance, source: BackupSource, key: string, keys: AgeKeys | undefined, signal: AbortSignal | undefined, now: number): Promise<CacheEntry> {
  const { id, dir } = claimStagingDir(inst, `browse:${source.name}`, now);
  // Busy from the claim until the last hold is released: no one else's claim makes way with it.
  busyStaging().add(id);
  const expires = now + BROWSE_TTL_MS;
  // Recorded before a byte is written: the sweep knows this is a cache and when it goes.
  fs.writeFileSync(path.join(dir, BROWSE_RECORD), JSON.stringify({ backup: source.name, expires_at: new Date(expires).toISOString() }), { mode: PRIVATE_FILE_MODE });
  const payload = path.join(dir, "payload");
  try {
    const cap = restoreCapBytes(inst, process.env, id);
    const unpacked = await source.unpackDatabase(payload, {
      keys,
      cap,
      signal,
      admit: (bytes) => {
        if (bytes > cap) throw new ArchiveError("TOO_LARGE", `This backup's database is ${formatBytes(bytes)}, more than there is room for in staging (${formatBytes(cap)}).`, 413);
        reserveStaging(id, bytes);
      },
    });
    checkBackupDatabase(path.join(payload, LAYOUT.database), unpacked.meta);
    const entry: CacheEntry = { ...unpacked, id, expires, users: 0 };
    cache().set(key, entry);
    return entry;
  } catch (err) {
    busyStaging().delete(id);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  } finally {
    reserveStaging(id, null);
  }
}

/** Compressed bytes the last uncached browse of each backup read (the tests' proof that it stopped at coffer.db). */
export const lastRead = () => processWide("browseLastRead", () => new Map<string, number>());

/** Drop every cached database of this process (and their staging directories). */
export function clearBrowseCache(inst: Instance): void {
  for (const [k, e] of cache()) dropEntry(inst, k, e);
}

/** Every document of the backup `viewer` may see, with its state against now; `q` filters by name (case-insensitive). */
export async function browseBackup(inst: Instance, viewer: User, source: BackupSource, opts: { keys?: AgeKeys; q?: string; signal?: AbortSignal } = {}): Promise<BrowseResult> {
  const held = await holdDatabase(inst, source, opts.keys, { signal: opts.signal });
  try {
    return browseHeld(inst, viewer, source, held, opts.q);
  } finally {
    held.release();
  }
}

/** The list of a held database (restoreDocuments holds it across the list and the files). */
export function browseHeld(inst: Instance, viewer: User, source: BackupSource, held: HeldDatabase, q?: string): BrowseResult {
  const { meta, encrypted, has_vault } = held.entry;
  let docs: Omit<BackupDocument, "state">[];
  const db = openDatabase(path.join(held.payload, LAYOUT.database), { readonly: true });
  try {
    docs = readBackupDocuments(db, meta.created_at);
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new ArchiveError("DB_CORRUPT", `The database in this backup cannot be read: ${(err as Error).message}.`, 422, { cause: err });
  } finally {
    db.close();
  }
  const needle = q?.trim().toLowerCase();
  const stateOf = stateAgainstNow(inst);
  const documents = docs
    .filter((d) => mayTouch(viewer, d))
    .filter((d) => !needle || d.name.toLowerCase().includes(needle))
    .map((d) => ({ ...d, state: stateOf(d) }));
  return { backup: source.name, kind: source.kind, created_at: meta.created_at, scope: meta.scope, encrypted, has_vault, documents };
}
