import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { z } from "zod";
import type { Instance } from "../../instance";
import { AppError, forbidden } from "../../errors";
import { audit, userActor } from "../../audit/log";
import { getUser, type User } from "../../auth/users";
import type { AgeKeys } from "../../crypto/age";
import { acquireLock } from "../../lock";
import { SHA256_RE, blobPath, commitBlobSync } from "../../vault/blobs";
import { unlinkBlobWhenFree } from "../../vault/pins";
import { MAX_NAME_CHARS, contentTypeFor } from "../../vault/documents";
import { PRIVATE_DIR_MODE } from "../../util/modes";
import { browseHeld, holdDatabase, mayTouch, sameUser, type BackupDocument, type BackupSource, type HeldDatabase } from "./browse";

/**
 * Restore chosen documents from a backup into the running instance
 * (docs/architecture.md#restoring-single-documents). Everything is checked
 * before anything changes: the documents exist in the backup and the viewer
 * may have them, every file the vault lacks is read from the archive in one
 * pass into .tmp and checked against its hash; then the blobs move into the
 * vault and the rows are inserted in one synchronous step.
 */


export interface RestoredDocument {
  id: number;
  original_id: number;
  name: string;
  owner: string;
}

export const MAX_CHOSEN = 10_000;

/** What to bring back, as the API and the page send it: chosen ids, or everything deleted since the backup. */
export const documentChoiceSchema = z.union([
  z.object({ ids: z.array(z.number().int().positive()).min(1, "Choose at least one document.").max(MAX_CHOSEN, `Choose at most ${MAX_CHOSEN} documents at once.`) }).strict(),
  z.object({ deleted_since: z.literal(true) }).strict(),
], { error: 'Send either {"ids": [...]} or {"deleted_since": true}.' });

export type DocumentChoice = z.infer<typeof documentChoiceSchema>;

/** An id kept from a backup at most this large: a backup's 2^53 would push SQLite's next ids past what JavaScript counts exactly. */
const MAX_KEPT_ID = 2 ** 31 - 1;

/** "notes (restored 2026-03-14).txt", the stem shortened (by characters) so the whole name stays within MAX_NAME_CHARS. */
function suffixed(name: string, day: string, n: number): string {
  const ext = path.extname(name);
  const stem = ext && ext !== name ? name.slice(0, -ext.length) : name;
  const tail = ` (restored ${day}${n > 1 ? ` ${n}` : ""})${ext && ext !== name ? ext : ""}`;
  return [...stem].slice(0, Math.max(1, MAX_NAME_CHARS - [...tail].length)).join("") + tail;
}

export async function restoreDocuments(
  inst: Instance,
  viewer: User,
  ip: string | null,
  source: BackupSource,
  choice: DocumentChoice,
  opts: { keys?: AgeKeys; signal?: AbortSignal; now?: Date } = {},
): Promise<RestoredDocument[]> {
  const held = await holdDatabase(inst, source, opts.keys, { signal: opts.signal });
  try {
    return await restoreHeld(inst, viewer, ip, source, held, choice, opts);
  } finally {
    held.release();
  }
}

async function restoreHeld(
  inst: Instance,
  viewer: User,
  ip: string | null,
  source: BackupSource,
  held: HeldDatabase,
  choice: DocumentChoice,
  opts: { keys?: AgeKeys; signal?: AbortSignal; now?: Date },
): Promise<RestoredDocument[]> {
  const listed = browseHeld(inst, viewer, source, held);
  const byId = new Map(listed.documents.map((d) => [d.id, d]));
  let chosen: BackupDocument[];
  if ("ids" in choice) {
    const ids = [...new Set(choice.ids)];
    if (ids.length > MAX_CHOSEN) throw new AppError(400, "TOO_LARGE", `Choose at most ${MAX_CHOSEN} documents at once.`);
    chosen = [];
    for (const id of ids) {
      const d = byId.get(id);
      if (!d) {
        // Another's document in the backup is refused as such (the member asked for it by id).
        if (viewer.role !== "admin" && browseHeld(inst, { ...viewer, role: "admin" }, source, held).documents.some((x) => x.id === id)) {
          throw forbidden(`Document ${id} in ${source.name} belongs to another user; you can restore only your own documents.`);
        }
        throw new AppError(422, "DOCUMENT_NOT_IN_BACKUP", `${source.name} holds no document with id ${id}. Nothing was restored.`);
      }
      if (!mayTouch(viewer, d)) throw forbidden(`Document ${id} in ${source.name} belongs to another user; you can restore only your own documents.`);
      chosen.push(d);
    }
  } else {
    chosen = listed.documents.filter((d) => d.state === "deleted_since");
  }
  if (!chosen.length) return [];

  const lock = await acquireLock(inst.paths.root, `restore documents from ${source.name}`);
  const work = path.join(inst.paths.tmp, `granular-${crypto.randomBytes(8).toString("hex")}`);
  try {
    // Files the vault lacks (hashes were checked as 64 hex when the backup was browsed; checked again before any path).
    const need = new Map<string, number>();
    for (const d of chosen) {
      if (!SHA256_RE.test(d.sha256)) throw new AppError(422, "DB_BAD_HASH", "A document's content hash in this backup is not a SHA-256. Nothing was restored.");
      const have = fs.statSync(blobPath(inst.paths, d.sha256), { throwIfNoEntry: false });
      if (!have) need.set(d.sha256, d.size);
      // The live file is the truth about its size: a backup that says otherwise was altered.
      else if (have.size !== d.size) throw new AppError(422, "DOCUMENT_HASH_MISMATCH", `Document ${d.id} in ${source.name} gives its file a size (${d.size} bytes) other than the file's (${have.size}): the backup was altered. Nothing was restored.`);
    }
    const fetched = new Set<string>();
    if (need.size) {
      if (!listed.has_vault) {
        throw new AppError(422, "DOCUMENT_FILE_NOT_IN_BACKUP", `${source.name} is a ${listed.scope} backup without document files, and ${need.size} of the chosen documents' files are no longer in this instance's vault. Choose a full backup. Nothing was restored.`);
      }
      fs.mkdirSync(work, { recursive: true, mode: PRIVATE_DIR_MODE });
      const got = await source.fetchFiles(held.payload, need, work, { keys: opts.keys, signal: opts.signal });
      for (const sha of got) if (need.has(sha)) fetched.add(sha);
      const missing = [...need.keys()].filter((s) => !fetched.has(s));
      if (missing.length) throw new AppError(422, "DOCUMENT_FILE_NOT_IN_BACKUP", `${source.name} does not contain the files of ${missing.length} chosen document(s). Nothing was restored.`);
    }

    // From here on synchronous: blobs into the vault and rows in, with nothing in between.
    // A file that was already in the vault may have been erased while the archive was read (no lock on erasing).
    const gone = chosen.filter((d) => !need.has(d.sha256) && !fs.existsSync(blobPath(inst.paths, d.sha256)));
    if (gone.length) throw new AppError(409, "DOCUMENT_FILE_GONE", `${gone.length} chosen document file(s) were erased from the vault while this restore ran. Nothing was restored; try again.`);
    const day = (opts.now ?? new Date()).toISOString().slice(0, 10);
    const actor = userActor(viewer, ip);
    for (const sha of fetched) {
      commitBlobSync(inst.paths, { tmpPath: path.join(work, sha), sha256: sha, size: need.get(sha)! });
    }
    const insert = inst.db.transaction(() => {
      const out: RestoredDocument[] = [];
      for (const d of chosen) {
        const live = d.owner !== null ? getUser(inst, d.owner_id) : null;
        const owner = live && sameUser(live, d) ? live : viewer;
        let name = d.name;
        const clash = inst.db.prepare("SELECT 1 FROM documents WHERE owner_id = ? AND name = ? AND deleted_at IS NULL LIMIT 1");
        for (let n = 1; clash.get(owner.id, name); n++) name = suffixed(d.name, day, n);
        const idFree = !inst.db.prepare("SELECT 1 FROM documents WHERE id = ?").get(d.id);
        const info = inst.db
          .prepare("INSERT INTO documents (id, owner_id, name, content_type, size, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
          .run(idFree && d.id <= MAX_KEPT_ID ? d.id : null, owner.id, name, contentTypeFor(name, d.content_type), d.size, d.sha256, d.created_at);
        const id = Number(info.lastInsertRowid);
        inst.db.prepare("UPDATE users SET used_bytes = used_bytes + ? WHERE id = ?").run(d.size, owner.id);
        audit(inst.db, actor, "document.restore_from_backup", name, { id, original_id: d.id, backup: source.name, source: source.kind, owner: owner.username });
        out.push({ id, original_id: d.id, name, owner: owner.username });
      }
      return out;
    });
    try {
      return insert();
    } catch (err) {
      // Nothing half-done: the files this restore brought into the vault go again unless a document took them meanwhile.
      const used = inst.db.prepare("SELECT 1 FROM documents WHERE sha256 = ? LIMIT 1");
      for (const sha of fetched) unlinkBlobWhenFree(blobPath(inst.paths, sha), () => !used.get(sha));
      throw err;
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    lock.release();
  }
}
