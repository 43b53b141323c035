import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createDocument, deleteDocument, getDocumentFor, listDocuments } from "@/lib/vault/documents";
import { listTrash, restoreFromTrash, deleteForever, emptyTrash, purgeTrash, trashedBytes, TrashPurgeJob } from "@/lib/vault/trash";
import { DAY_MS } from "@/lib/util/time";
import { blobPath } from "@/lib/vault/blobs";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { writeArchive } from "@/lib/backup/format/writer";
import { stageArchive } from "@/lib/backup/restore/staging";
import { applyRestore } from "@/lib/backup/restore/apply";
import { openInstance, closeInstance } from "@/lib/instance";
import { listAudit } from "@/lib/audit/log";
import { renderMetrics } from "@/lib/metrics";
import { makeSetUpInstance, tempDir } from "../support/instance";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));
async function setUp() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  // Erased documents' files here go at once: with continuous protection on they stay for its window (test/continuous.test.ts).
  const s = currentSettings(t.inst.paths.settings);
  saveSettings(t.inst.paths.settings, { ...s, backup: { ...s.backup, continuous: { ...s.backup.continuous, enabled: false } } });
  return t;
}
const body = (s: string) => Readable.from([Buffer.from(s)]);
const usedBytes = (inst: { db: import("better-sqlite3").Database }, id: number) => inst.db.prepare("SELECT used_bytes FROM users WHERE id = ?").pluck().get(id) as number;

describe("trash", () => {
  it("a deleted document leaves the list but keeps its row, blob and usage; its owner restores it as it was", async () => {
    const { inst, member } = await setUp();
    const doc = await createDocument(inst, member, null, { name: "contract.pdf", body: body("the signed contract"), maxBytes: 1e6 });
    expect(deleteDocument(inst, member, "10.0.0.1", doc.id)).toEqual({ trashed: true });
    expect(listDocuments(inst, member)).toEqual([]);
    expect(() => getDocumentFor(inst, member, doc.id)).toThrow(expect.objectContaining({ status: 404 }));
    expect(fs.existsSync(blobPath(inst.paths, doc.sha256))).toBe(true);
    expect(usedBytes(inst, member.id)).toBe(doc.size);
    expect(trashedBytes(inst, member.id)).toBe(doc.size);
    const [t] = listTrash(inst, member);
    expect(t).toMatchObject({ id: doc.id, name: "contract.pdf", owner: "mia" });
    expect(Date.parse(t.purge_at) - Date.parse(t.deleted_at)).toBe(30 * DAY_MS);

    const back = restoreFromTrash(inst, member, null, doc.id);
    expect(back).toMatchObject({ id: doc.id, name: "contract.pdf", sha256: doc.sha256, deleted_at: null });
    expect(listDocuments(inst, member).map((d) => d.id)).toEqual([doc.id]);
    expect(listTrash(inst, member)).toEqual([]);
    expect(listAudit(inst.db, { limit: 10 }).map((a) => a.action)).toEqual(expect.arrayContaining(["document.trash", "document.untrash"]));
  });

  it("members see and restore only their own; only admins delete forever or empty it; ids of others' are 404", async () => {
    const { inst, admin, member } = await setUp();
    const mine = await createDocument(inst, member, null, { name: "mine.txt", body: body("member bytes"), maxBytes: 1e6 });
    const theirs = await createDocument(inst, admin, null, { name: "admin.txt", body: body("admin bytes"), maxBytes: 1e6 });
    deleteDocument(inst, member, null, mine.id);
    deleteDocument(inst, admin, null, theirs.id);
    expect(listTrash(inst, member).map((d) => d.name)).toEqual(["mine.txt"]);
    expect(listTrash(inst, admin).map((d) => d.name).sort()).toEqual(["admin.txt", "mine.txt"]);
    expect(() => restoreFromTrash(inst, member, null, theirs.id)).toThrow(expect.objectContaining({ status: 404 }));
    expect(() => restoreFromTrash(inst, member, null, 999)).toThrow(expect.objectContaining({ status: 404 }));
    expect(() => deleteForever(inst, member, null, mine.id)).toThrow(expect.objectContaining({ status: 403, message: expect.stringContaining("Only an admin") }));
    expect(() => emptyTrash(inst, member, null)).toThrow(expect.objectContaining({ status: 403 }));
    // A live document is not in the trash: restoring or erasing it through the trash is a 404.
    const live = await createDocument(inst, member, null, { name: "live.txt", body: body("live"), maxBytes: 1e6 });
    expect(() => restoreFromTrash(inst, member, null, live.id)).toThrow(expect.objectContaining({ status: 404 }));
    expect(() => deleteForever(inst, admin, null, live.id)).toThrow(expect.objectContaining({ status: 404 }));

    deleteForever(inst, admin, null, mine.id);
    expect(fs.existsSync(blobPath(inst.paths, mine.sha256))).toBe(false);
    expect(usedBytes(inst, member.id)).toBe(live.size);
    expect(emptyTrash(inst, admin, null)).toBe(1);
    expect(fs.existsSync(blobPath(inst.paths, theirs.sha256))).toBe(false);
    expect(listTrash(inst, admin)).toEqual([]);
    expect(listDocuments(inst, admin).map((d) => d.name)).toEqual(["live.txt"]);
  });

  it("a blob shared with a trashed document stays until the last document, trashed or live, is erased", async () => {
    const { inst, admin, member } = await setUp();
    const a = await createDocument(inst, admin, null, { name: "one.txt", body: body("same bytes"), maxBytes: 1e6 });
    const b = await createDocument(inst, member, null, { name: "two.txt", body: body("same bytes"), maxBytes: 1e6 });
    deleteDocument(inst, admin, null, a.id);
    deleteForever(inst, admin, null, a.id);
    expect(fs.existsSync(blobPath(inst.paths, a.sha256))).toBe(true);
    deleteDocument(inst, member, null, b.id);
    expect(fs.existsSync(blobPath(inst.paths, a.sha256))).toBe(true);
    deleteForever(inst, admin, null, b.id);
    expect(fs.existsSync(blobPath(inst.paths, a.sha256))).toBe(false);
  });

  it("the purge job erases what is past trash.retention_days, and retention 0 deletes at once", async () => {
    const { inst, admin, member } = await setUp();
    const old = await createDocument(inst, member, null, { name: "old.txt", body: body("old"), maxBytes: 1e6 });
    const recent = await createDocument(inst, member, null, { name: "recent.txt", body: body("recent"), maxBytes: 1e6 });
    deleteDocument(inst, member, null, old.id);
    deleteDocument(inst, member, null, recent.id);
    const now = Date.now();
    inst.db.prepare("UPDATE documents SET deleted_at = ? WHERE id = ?").run(new Date(now - 31 * DAY_MS).toISOString(), old.id);
    const lines: string[] = [];
    const job = new TrashPurgeJob(() => inst, { now: () => now, log: (l) => lines.push(l) });
    expect(job.tick()).toBe(1);
    expect(lines).toEqual(["trash: erased 1 document(s) past the retention period"]);
    expect(listTrash(inst, member).map((d) => d.name)).toEqual(["recent.txt"]);
    expect(fs.existsSync(blobPath(inst.paths, old.sha256))).toBe(false);
    expect(purgeTrash(inst, now + 29 * DAY_MS)).toBe(0);
    expect(purgeTrash(inst, now + 30 * DAY_MS + 1000)).toBe(1);
    expect(listAudit(inst.db, { limit: 20 }).filter((a) => a.action === "trash.purge")).toHaveLength(2);

    const s = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...s, trash: { retention_days: 0 } });
    const gone = await createDocument(inst, admin, null, { name: "gone.txt", body: body("gone at once"), maxBytes: 1e6 });
    expect(deleteDocument(inst, admin, null, gone.id)).toEqual({ trashed: false });
    expect(listTrash(inst, admin)).toEqual([]);
    expect(fs.existsSync(blobPath(inst.paths, gone.sha256))).toBe(false);
  });

  it("a backup holds the trash, and a restore brings it back as it was (still trashed, still restorable)", async () => {
    const { inst, member, dir } = await setUp();
    const kept = await createDocument(inst, member, null, { name: "kept.txt", body: body("kept"), maxBytes: 1e6 });
    const binned = await createDocument(inst, member, null, { name: "binned.txt", body: body("in the trash"), maxBytes: 1e6 });
    deleteDocument(inst, member, null, binned.id);
    const file = path.join(dir, "full.tar.gz");
    await writeArchive(inst, fs.createWriteStream(file), { scope: "full", trigger: "manual" });
    const restoredDir = path.join(tempDir("coffer-trash-restore-"), "data");
    let fresh = openInstance(restoredDir);
    const preview = await stageArchive(fresh, fs.createReadStream(file));
    fresh = (await applyRestore(fresh, preview.id, { id: null, name: "test" })).instance;
    cleanups.push(() => (closeInstance(fresh), fs.rmSync(path.dirname(restoredDir), { recursive: true, force: true })));
    const viewer = { ...member };
    expect(listDocuments(fresh, viewer).map((d) => d.id)).toEqual([kept.id]);
    expect(listTrash(fresh, viewer).map((d) => d.id)).toEqual([binned.id]);
    expect(fs.existsSync(blobPath(fresh.paths, binned.sha256))).toBe(true);
    restoreFromTrash(fresh, viewer, null, binned.id);
    expect(listDocuments(fresh, viewer).map((d) => d.name).sort()).toEqual(["binned.txt", "kept.txt"]);
  });

  it("metrics count live and trashed documents apart", async () => {
    const { inst, member } = await setUp();
    const d = await createDocument(inst, member, null, { name: "m.txt", body: body("m"), maxBytes: 1e6 });
    await createDocument(inst, member, null, { name: "n.txt", body: body("n"), maxBytes: 1e6 });
    deleteDocument(inst, member, null, d.id);
    const text = renderMetrics(inst);
    expect(text).toMatch(/^coffer_documents 1$/m);
    expect(text).toMatch(/^coffer_documents_trashed 1$/m);
  });
});
