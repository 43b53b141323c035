import fs from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import type { Instance } from "../instance";
import { AppError, notFound } from "../errors";
import { userActor, audit } from "../audit/log";
import type { User } from "../auth/users";
import { stageBlob, commitBlobSync, discardStagedBlob, blobPath } from "./blobs";
import { releaseBlobs } from "../continuous/kept";
import { currentSettings } from "../settings/store";

export interface DocumentRow {
  id: number;
  owner_id: number;
  owner: string;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
  deleted_at: string | null;
  deleted_by: number | null;
}

const TYPES: Record<string, string> = {
  ".pdf": "application/pdf",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".json": "application/json",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".svg": "image/svg+xml",
  ".zip": "application/zip",
  ".gz": "application/gzip",
  ".doc": "application/msword",
  ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ".odt": "application/vnd.oasis.opendocument.text",
  ".mp3": "audio/mpeg",
  ".mp4": "video/mp4",
};

/**
 * Characters that change how a name displays without being seen: bidi
 * overrides and isolates (`invoice\u202Efdp.exe` shows as "invoiceexe.pdf"),
 * zero-width spaces and joiners, the BOM, soft hyphen, and lone surrogates.
 */
// eslint-disable-next-line no-control-regex, no-misleading-character-class
const INVISIBLE_RE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export const MAX_NAME_CHARS = 255;

/** A file name safe to store and echo back: no directories, no control or invisible characters, at most 255 code points. */
export function cleanDocumentName(raw: string | null | undefined): string {
  const base = (raw ?? "").replace(/\\/g, "/").split("/").pop() ?? "";
  // Cut on code points, never inside a surrogate pair, so the result is valid UTF-8.
  const name = [...base.normalize("NFC").replace(INVISIBLE_RE, "").trim()].slice(0, MAX_NAME_CHARS).join("").trim();
  if (!name || name === "." || name === "..") {
    throw new AppError(400, "BAD_NAME", "Give the file a name (the ?name= query parameter).", { name: "A file name is required." });
  }
  return name;
}

export function contentTypeFor(name: string, declared: string | null | undefined): string {
  const d = (declared ?? "").split(";")[0].trim().toLowerCase();
  if (d && d !== "application/octet-stream" && /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(d)) return declared!.trim().slice(0, 128);
  return TYPES[path.extname(name).toLowerCase()] ?? "application/octet-stream";
}

export const DOCUMENT_SELECT = `SELECT d.*, u.username AS owner FROM documents d JOIN users u ON u.id = d.owner_id`;

/** Live documents (not in the trash) `viewer` may see. */
export function listDocuments(inst: Instance, viewer: User): DocumentRow[] {
  if (viewer.role === "admin") return inst.db.prepare(`${DOCUMENT_SELECT} WHERE d.deleted_at IS NULL ORDER BY d.id DESC`).all() as DocumentRow[];
  return inst.db.prepare(`${DOCUMENT_SELECT} WHERE d.deleted_at IS NULL AND d.owner_id = ? ORDER BY d.id DESC`).all(viewer.id) as DocumentRow[];
}

/** The live document if `viewer` may see it; 404 (not 403) for others' documents so ids leak nothing. */
export function getDocumentFor(inst: Instance, viewer: User, id: number): DocumentRow {
  const doc = inst.db.prepare(`${DOCUMENT_SELECT} WHERE d.id = ? AND d.deleted_at IS NULL`).get(id) as DocumentRow | undefined;
  if (!doc || (viewer.role !== "admin" && doc.owner_id !== viewer.id)) throw notFound("That document");
  return doc;
}

export function openDocumentStream(inst: Instance, doc: DocumentRow): fs.ReadStream {
  const file = blobPath(inst.paths, doc.sha256);
  if (!fs.existsSync(file)) {
    throw new AppError(404, "BLOB_MISSING", "This document's data is missing from the vault. An admin can check the instance with the doctor or restore a backup.");
  }
  return fs.createReadStream(file);
}

export async function createDocument(
  inst: Instance,
  owner: User,
  ip: string | null,
  input: { name: string; contentType?: string | null; body: Readable; maxBytes: number },
): Promise<DocumentRow> {
  const name = cleanDocumentName(input.name);
  const staged = await stageBlob(inst.paths, input.body, input.maxBytes);
  try {
    const { durable } = commitBlobSync(inst.paths, staged);
    const id = inst.db.transaction(() => {
      const info = inst.db
        .prepare("INSERT INTO documents (owner_id, name, content_type, size, sha256, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .run(owner.id, name, contentTypeFor(name, input.contentType), staged.size, staged.sha256, new Date().toISOString());
      inst.db.prepare("UPDATE users SET used_bytes = used_bytes + ? WHERE id = ?").run(staged.size, owner.id);
      audit(inst.db, userActor(owner, ip), "document.upload", name, {
        id: Number(info.lastInsertRowid),
        size: staged.size,
        sha256: staged.sha256,
      });
      return Number(info.lastInsertRowid);
    })();
    const doc = getDocumentFor(inst, owner, id);
    // Answered only once the blob's name is on disk for good; a failure there is the disk's, not the upload's.
    await durable().catch((err: Error) => console.error(`Coffer: could not sync the vault folder of ${staged.sha256}: ${err.message}`));
    return doc;
  } catch (err) {
    discardStagedBlob(staged);
    throw err;
  }
}

/**
 * Deletes a document as a person does: into the trash (lib/vault/trash.ts), or
 * for good at once when the trash keeps nothing (trash.retention_days: 0).
 */
export function deleteDocument(inst: Instance, viewer: User, ip: string | null, id: number): { trashed: boolean } {
  // getDocumentFor answers 404 for documents the viewer may not see: the owner-or-admin check.
  const doc = getDocumentFor(inst, viewer, id);
  const actor = userActor(viewer, ip);
  if (currentSettings(inst.paths.settings).trash.retention_days === 0) {
    eraseDocuments(inst, [doc], () => audit(inst.db, actor, "document.delete", doc.name, { id, owner: doc.owner }));
    return { trashed: false };
  }
  inst.db.transaction(() => {
    inst.db.prepare("UPDATE documents SET deleted_at = ?, deleted_by = ? WHERE id = ? AND deleted_at IS NULL").run(new Date().toISOString(), viewer.id, id);
    audit(inst.db, actor, "document.trash", doc.name, { id, owner: doc.owner });
  })();
  return { trashed: true };
}

/**
 * Removes documents for good (live or trashed), in one transaction with `record` (the audit
 * line); each blob goes once no other document, trashed ones included, references it.
 */
export function eraseDocuments(inst: Instance, docs: Pick<DocumentRow, "id" | "size" | "owner_id" | "sha256">[], record: () => void): void {
  const stillUsed = (sha: string) => !!inst.db.prepare("SELECT 1 FROM documents WHERE sha256 = ? LIMIT 1").get(sha);
  const orphans = inst.db.transaction(() => {
    for (const doc of docs) {
      inst.db.prepare("DELETE FROM documents WHERE id = ?").run(doc.id);
      inst.db.prepare("UPDATE users SET used_bytes = max(0, used_bytes - ?) WHERE id = ?").run(doc.size, doc.owner_id);
    }
    record();
    return [...new Set(docs.map((d) => d.sha256))].filter((sha) => !stillUsed(sha));
  })();
  releaseBlobs(inst, orphans, (sha) => !stillUsed(sha));
}
