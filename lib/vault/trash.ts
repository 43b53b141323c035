import type { Instance } from "../instance";
import { forbidden, notFound } from "../errors";
import { userActor, systemActor, audit } from "../audit/log";
import type { User } from "../auth/users";
import { currentSettings } from "../settings/store";
import { Ticker } from "../util/ticker";
import { sweepKeptBlobs } from "../continuous/kept";
import { DOCUMENT_SELECT, eraseDocuments, type DocumentRow } from "./documents";
import { DAY_MS } from "../util/time";

/**
 * The trash (docs/architecture.md#trash): a deleted document keeps its row and blob,
 * marked deleted_at, for trash.retention_days, so its owner can take it back;
 * then the purge job erases it. Trashed documents are in every backup and
 * count against their owner's usage until erased.
 */


export interface TrashedDocument extends DocumentRow {
  deleted_at: string;
  /** When the purge job erases it. */
  purge_at: string;
}

function withPurgeAt(inst: Instance, rows: DocumentRow[]): TrashedDocument[] {
  const days = currentSettings(inst.paths.settings).trash.retention_days;
  return rows.map((r) => ({ ...r, deleted_at: r.deleted_at!, purge_at: new Date(Date.parse(r.deleted_at!) + days * DAY_MS).toISOString() }));
}

/** The viewer's trashed documents, newest first; an admin's: everyone's. */
export function listTrash(inst: Instance, viewer: User): TrashedDocument[] {
  const rows =
    viewer.role === "admin"
      ? inst.db.prepare(`${DOCUMENT_SELECT} WHERE d.deleted_at IS NOT NULL ORDER BY d.deleted_at DESC, d.id DESC`).all()
      : inst.db.prepare(`${DOCUMENT_SELECT} WHERE d.deleted_at IS NOT NULL AND d.owner_id = ? ORDER BY d.deleted_at DESC, d.id DESC`).all(viewer.id);
  return withPurgeAt(inst, rows as DocumentRow[]);
}

/** A trashed document the viewer may see; 404 for others' (ids leak nothing) and for live ones. */
function trashedFor(inst: Instance, viewer: User, id: number): DocumentRow {
  const doc = inst.db.prepare(`${DOCUMENT_SELECT} WHERE d.id = ? AND d.deleted_at IS NOT NULL`).get(id) as DocumentRow | undefined;
  if (!doc || (viewer.role !== "admin" && doc.owner_id !== viewer.id)) throw notFound("That document in the trash");
  return doc;
}

/** Back from the trash, as it was (same id, name and owner). */
export function restoreFromTrash(inst: Instance, viewer: User, ip: string | null, id: number): DocumentRow {
  const doc = trashedFor(inst, viewer, id);
  inst.db.transaction(() => {
    inst.db.prepare("UPDATE documents SET deleted_at = NULL, deleted_by = NULL WHERE id = ?").run(id);
    audit(inst.db, userActor(viewer, ip), "document.untrash", doc.name, { id, owner: doc.owner });
  })();
  return { ...doc, deleted_at: null, deleted_by: null };
}

const adminOnly = (viewer: User, what: string) => {
  if (viewer.role !== "admin") throw forbidden(`Only an admin can ${what}. You can restore your own documents from the trash; the rest go by themselves after the retention period.`);
};

/** Erase one trashed document now (admins). */
export function deleteForever(inst: Instance, viewer: User, ip: string | null, id: number): void {
  adminOnly(viewer, "delete a document forever");
  const doc = trashedFor(inst, viewer, id);
  eraseDocuments(inst, [doc], () => audit(inst.db, userActor(viewer, ip), "trash.delete_forever", doc.name, { id, owner: doc.owner }));
}

/** Erase everything in the trash now (admins); how many documents went. */
export function emptyTrash(inst: Instance, viewer: User, ip: string | null): number {
  adminOnly(viewer, "empty the trash");
  const docs = inst.db.prepare("SELECT id, size, owner_id, sha256 FROM documents WHERE deleted_at IS NOT NULL").all() as DocumentRow[];
  if (docs.length) eraseDocuments(inst, docs, () => audit(inst.db, userActor(viewer, ip), "trash.empty", null, { documents: docs.length }));
  return docs.length;
}

/** Erase what has been in the trash longer than trash.retention_days; how many documents went. */
export function purgeTrash(inst: Instance, now = Date.now()): number {
  const days = currentSettings(inst.paths.settings).trash.retention_days;
  const before = new Date(now - days * DAY_MS).toISOString();
  const docs = inst.db.prepare("SELECT id, size, owner_id, sha256 FROM documents WHERE deleted_at IS NOT NULL AND deleted_at <= ?").all(before) as DocumentRow[];
  if (docs.length) eraseDocuments(inst, docs, () => audit(inst.db, systemActor("trash purge", null), "trash.purge", null, { documents: docs.length, retention_days: days }));
  return docs.length;
}

/** Bytes in the trash, per owner (for the usage shown beside the trash). */
export function trashedBytes(inst: Instance, ownerId: number | null): number {
  const sql = "SELECT coalesce(sum(size), 0) FROM documents WHERE deleted_at IS NOT NULL" + (ownerId === null ? "" : " AND owner_id = ?");
  const stmt = inst.db.prepare(sql).pluck();
  return (ownerId === null ? stmt.get() : stmt.get(ownerId)) as number;
}

/** The purge on its own timer (hourly): the trash never holds a document much past its retention. */
export class TrashPurgeJob {
  private readonly ticker = new Ticker(() => this.tick());

  constructor(
    private readonly instance: () => Instance | null,
    private readonly opts: { now?: () => number; log?: (line: string) => void } = {},
  ) {}

  start(tickMs = 3600 * 1000): void {
    this.ticker.start(tickMs);
  }

  stop(): void {
    this.ticker.stop();
  }

  /** Never rejects. */
  tick(): number {
    const log = this.opts.log ?? ((l: string) => console.log(`Coffer: ${l}`));
    try {
      const inst = this.instance();
      if (!inst) return 0;
      const now = (this.opts.now ?? Date.now)();
      const n = purgeTrash(inst, now);
      if (n) log(`trash: erased ${n} document(s) past the retention period`);
      const files = sweepKeptBlobs(inst, now);
      if (files) log(`trash: deleted ${files} document file(s) kept for the continuous window, which has passed`);
      return n;
    } catch (err) {
      log(`trash purge failed: ${(err as Error).message}`);
      return 0;
    }
  }
}
