import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import type { Readable } from "node:stream";
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
import { isArchiveName, scopeHasInstance, scopeHasVault, type BackupMeta } from "../format/tables";
import { currentTarget } from "../local/repository";
import type { BackupTarget } from "../local/target";
import { BROWSE_RECORD, checkBackupDatabase, claimStagingDir, reserveStaging, restoreCapBytes } from "./staging";
import { writeNewFileUnder } from "./payload";

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

/** Where a backup comes from: a stored local archive (an offsite snapshot would be another). */
export interface BackupSource {
  /** The archive's name (validated by the source). */
  readonly name: string;
  readonly kind: "stored";
  /** What changes when the object does (size, time): part of the cache key. */
  version(): Promise<string>;
  open(): Promise<Readable>;
}

/** A stored backup by name: only archive names, never a path. */
export async function storedSource(inst: Instance, name: string, target: BackupTarget = currentTarget(inst)): Promise<BackupSource> {
  if (!isArchiveName(name)) throw notFound("That backup");
  const st = await target.stat(name);
  if (!st) throw notFound("That backup");
  return { name, kind: "stored", version: async () => `${st.size}:${st.modifiedAt}`, open: () => target.open(name) };
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
  created_at: string;
  scope: string;
  encrypted: boolean;
  /** The backup holds the document files (full scope); a db-scope backup can bring back only those whose file is still in the vault. */
  has_vault: boolean;
  documents: BackupDocument[];
}

interface CacheEntry {
  id: string;
  expires: number;
  meta: BackupMeta;
  encrypted: boolean;
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

/** Unpack the backup's coffer.db (and nothing after it) into a fresh staging directory, or reuse a cached one. */
async function cachedDatabase(inst: Instance, source: BackupSource, keys: AgeKeys | undefined, now = Date.now()): Promise<CacheEntry & { file: string }> {
  const key = cacheKey(inst, source, await source.version(), keys);
  const hit = cache().get(key);
  if (hit) {
    const file = path.join(inst.paths.staging, hit.id, "payload", LAYOUT.database);
    if (hit.expires > now && fs.existsSync(file)) return { ...hit, file };
    cache().delete(key);
    fs.rmSync(path.join(inst.paths.staging, hit.id), { recursive: true, force: true });
  }
  const { id, dir } = claimStagingDir(inst, `browse:${source.name}`, now);
  const expires = now + BROWSE_TTL_MS;
  // Recorded before a byte is written: the sweep knows this is a cache and when it goes.
  fs.writeFileSync(path.join(dir, BROWSE_RECORD), JSON.stringify({ backup: source.name, expires_at: new Date(expires).toISOString() }), { mode: PRIVATE_FILE_MODE });
  const payload = path.join(dir, "payload");
  try {
    const stream = await source.open();
    const cap = restoreCapBytes(inst, process.env, id);
    let wrote = false;
    const summary = await readArchive(stream, {
      keys,
      maxBytes: cap,
      onMeta: (meta) => {
        if (!scopeHasInstance(meta.scope)) throw new AppError(422, "BACKUP_NO_DATABASE", `${source.name} is a ${meta.scope} backup: it holds document files but no database, so there is no list of documents to browse.`);
        const need = meta.members[LAYOUT.database]?.size ?? 0;
        if (need > cap) throw new ArchiveError("TOO_LARGE", `This backup's database is ${formatBytes(need)}, more than there is room for in staging (${formatBytes(cap)}).`, 413);
        reserveStaging(id, need);
      },
      onMember: async (name, content) => {
        if (name !== LAYOUT.database) {
          content.resume();
          return;
        }
        await writeNewFileUnder(payload, LAYOUT.database, content);
        wrote = true;
      },
      // Format v1 puts coffer.db right after the meta: the rest of the archive is never read.
      stopAfter: (name) => name === LAYOUT.database,
    });
    if (!wrote) throw new ArchiveError("ARCHIVE_MISSING_MEMBER", `${source.name} has no database (coffer.db).`);
    const file = path.join(payload, LAYOUT.database);
    checkBackupDatabase(file, summary.meta);
    const entry: CacheEntry = { id, expires, meta: summary.meta, encrypted: summary.encryption !== null };
    cache().set(key, entry);
    lastRead().set(source.name, summary.compressedBytes);
    return { ...entry, file };
  } catch (err) {
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
  for (const [k, e] of cache()) {
    fs.rmSync(path.join(inst.paths.staging, e.id), { recursive: true, force: true });
    cache().delete(k);
  }
}

/** Every document of the backup `viewer` may see, with its state against now; `q` filters by name (case-insensitive). */
export async function browseBackup(inst: Instance, viewer: User, source: BackupSource, opts: { keys?: AgeKeys; q?: string } = {}): Promise<BrowseResult> {
  const { file, meta, encrypted } = await cachedDatabase(inst, source, opts.keys);
  let docs: Omit<BackupDocument, "state">[];
  const db = openDatabase(file, { readonly: true });
  try {
    docs = readBackupDocuments(db, meta.created_at);
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new ArchiveError("DB_CORRUPT", `The database in this backup cannot be read: ${(err as Error).message}.`, 422, { cause: err });
  } finally {
    db.close();
  }
  const q = opts.q?.trim().toLowerCase();
  const stateOf = stateAgainstNow(inst);
  const documents = docs
    .filter((d) => mayTouch(viewer, d))
    .filter((d) => !q || d.name.toLowerCase().includes(q))
    .map((d) => ({ ...d, state: stateOf(d) }));
  return { backup: source.name, created_at: meta.created_at, scope: meta.scope, encrypted, has_vault: scopeHasVault(meta.scope), documents };
}
