// Single documents from the other two sources: an offsite snapshot (the database from the bucket,
// each chosen file one blob GET) and a second of the continuous window (the database rebuilt by the
// real Litestream). The stored-archive source is in documents.test.ts.
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDocument, deleteDocument, listDocuments } from "@/lib/vault/documents";
import { emptyTrash } from "@/lib/vault/trash";
import { blobPath } from "@/lib/vault/blobs";
import { snapshotDatabase } from "@/lib/backup/format/db-snapshot";
import { closeRepository, openRepository } from "@/lib/backup/offsite/repository";
import { pushOffsite } from "@/lib/backup/offsite/push";
import { offsiteSource } from "@/lib/backup/offsite/pull";
import { browseBackup, clearBrowseCache } from "@/lib/backup/restore/browse";
import { restoreDocuments } from "@/lib/backup/restore/documents";
import { pointInTimeSource } from "@/lib/continuous/pitr";
import { continuousPlan, litestreamBinary, replicaWindow } from "@/lib/continuous/litestream";
import { ContinuousSupervisor } from "@/lib/continuous/supervisor";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { makeSetUpInstance } from "../../support/instance";
import { until } from "../../support/until";
import { configureOffsite, startS3, type TestS3 } from "../../support/s3";
import { startFaultProxy } from "../../support/fault-proxy";

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3.close();
});
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const body = (s: string) => Readable.from([Buffer.from(s)]);
const count = (inst: { db: import("@/lib/db/connection").DB }) => inst.db.prepare("SELECT count(*) FROM documents").pluck().get();

/** An instance with three documents pushed offsite, then one of them erased for good (row and file). */
async function pushedThenErased(encryption?: { passphrase: string }) {
  const t = await makeSetUpInstance();
  cleanups.push(() => {
    clearBrowseCache(t.inst);
    t.cleanup();
  });
  const contract = await createDocument(t.inst, t.admin, null, { name: "contract.pdf", body: body("contract as it was in March"), maxBytes: 1e6 });
  const notes = await createDocument(t.inst, t.member, null, { name: "notes.txt", body: body("mia's notes"), maxBytes: 1e6 });
  const photo = await createDocument(t.inst, t.admin, null, { name: "photo.bin", body: body("a photo ".repeat(5000)), maxBytes: 1e6 });
  // Through a proxy that only counts: what the restore fetches from the bucket.
  const loc = await s3.location("docs");
  const proxy = await startFaultProxy(loc.endpoint, { mode: "pass" });
  cleanups.push(() => proxy.close());
  const gets: string[] = [];
  proxy.failNext("500", (req) => (req.method === "GET" && gets.push(req.url ?? ""), false), 1e9);
  const proxied = { ...loc, endpoint: proxy.endpoint };
  configureOffsite(t.inst, proxied, encryption);
  // Continuous protection off, so an erased document's file goes at once (the window would keep it).
  const s = currentSettings(t.inst.paths.settings);
  saveSettings(t.inst.paths.settings, { ...s, backup: { ...s.backup, continuous: { ...s.backup.continuous, enabled: false } } });
  const repo = openRepository(proxied);
  cleanups.push(() => closeRepository(repo));
  const work = fs.mkdtempSync(path.join(t.inst.paths.tmp, "t-"));
  const pushed = await pushOffsite(t.inst, repo, { scope: "full", trigger: "manual", dbSnapshot: await snapshotDatabase(t.inst, work), now: new Date("2026-12-01T03:00:00Z") });
  fs.rmSync(work, { recursive: true, force: true });
  deleteDocument(t.inst, t.admin, null, contract.id);
  deleteDocument(t.inst, t.member, null, notes.id);
  expect(emptyTrash(t.inst, t.admin, null)).toBe(2);
  expect(fs.existsSync(blobPath(t.inst.paths, contract.sha256))).toBe(false);
  gets.length = 0;
  return { ...t, repo, snapshot: pushed.snapshot, contract, notes, photo, gets, loc };
}

describe("documents from an offsite snapshot", () => {
  it("lists what the snapshot holds against now, and restores one erased document with one blob GET; nothing else changes", async () => {
    const t = await pushedThenErased();
    const source = offsiteSource(t.repo, t.snapshot);
    const r = await browseBackup(t.inst, t.admin, source);
    expect(r).toMatchObject({ backup: t.snapshot, kind: "offsite", has_vault: true, encrypted: false });
    expect(Object.fromEntries(r.documents.map((d) => [d.name, d.state]))).toEqual({ "contract.pdf": "deleted_since", "notes.txt": "deleted_since", "photo.bin": "same" });
    expect(t.gets.some((u) => u.includes("/blobs/"))).toBe(false); // listing reads no document file
    t.gets.length = 0;

    const restored = await restoreDocuments(t.inst, t.admin, null, source, { ids: [t.contract.id] });
    expect(restored).toEqual([{ id: t.contract.id, original_id: t.contract.id, name: "contract.pdf", owner: "admin" }]);
    expect(fs.readFileSync(blobPath(t.inst.paths, t.contract.sha256), "utf8")).toBe("contract as it was in March");
    expect(t.gets.filter((u) => u.includes("/blobs/"))).toHaveLength(1);
    expect(listDocuments(t.inst, t.admin).map((d) => d.name).sort()).toEqual(["contract.pdf", "photo.bin"]);
    expect(listDocuments(t.inst, t.member)).toEqual([]); // mia's notes stay erased: only what was chosen came back
  });

  it("a member sees and restores only their own documents from a snapshot; another's is a 403", async () => {
    const t = await pushedThenErased();
    const source = offsiteSource(t.repo, t.snapshot);
    expect((await browseBackup(t.inst, t.member, source)).documents.map((d) => d.name)).toEqual(["notes.txt"]);
    await expect(restoreDocuments(t.inst, t.member, null, source, { ids: [t.contract.id] })).rejects.toMatchObject({ status: 403 });
    expect(await restoreDocuments(t.inst, t.member, null, source, { deleted_since: true })).toMatchObject([{ name: "notes.txt", owner: "mia" }]);
    expect(count(t.inst)).toBe(2);
  });

  it("a blob altered in the bucket is refused (422) and nothing changes; a snapshot the bucket lacks is a 404", async () => {
    const t = await pushedThenErased();
    const source = offsiteSource(t.repo, t.snapshot);
    await browseBackup(t.inst, t.admin, source);
    const dir = path.join(s3.dir, t.loc.bucket, t.loc.prefix, "blobs", t.contract.sha256.slice(0, 2));
    const file = fs.readdirSync(dir).map((n) => path.join(dir, n)).find((n) => n.endsWith("._S3rver_object"))!;
    fs.writeFileSync(file, "contract as it was in April"); // same length, other bytes
    await expect(restoreDocuments(t.inst, t.admin, null, source, { ids: [t.contract.id] })).rejects.toMatchObject({ status: 422, code: "OFFSITE_CORRUPT" });
    expect(count(t.inst)).toBe(1);
    expect(fs.existsSync(blobPath(t.inst.paths, t.contract.sha256))).toBe(false);
    expect(fs.readdirSync(t.inst.paths.tmp).filter((n) => n.startsWith("granular-"))).toEqual([]);
    await expect(browseBackup(t.inst, t.admin, offsiteSource(t.repo, "coffer_full_20200101_000000Z.tar.gz"))).rejects.toMatchObject({ status: 404 });
  });

  it("an encrypted snapshot needs its passphrase to be listed, and restores with it", async () => {
    const t = await pushedThenErased({ passphrase: "correct horse battery" });
    const source = offsiteSource(t.repo, t.snapshot);
    await expect(browseBackup(t.inst, t.admin, source)).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/encrypted/) });
    const keys = { passphrase: "correct horse battery" };
    expect((await browseBackup(t.inst, t.admin, source, { keys })).encrypted).toBe(true);
    await restoreDocuments(t.inst, t.admin, null, source, { ids: [t.contract.id] }, { keys });
    expect(fs.readFileSync(blobPath(t.inst.paths, t.contract.sha256), "utf8")).toBe("contract as it was in March");
  });
});

const binary = litestreamBinary();


describe.skipIf(!binary)("documents from a point in time", () => {
  it("lists what the instance held a moment ago and brings back one erased document, the rest of today untouched", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(() => {
      clearBrowseCache(t.inst);
      t.cleanup();
    });
    const s = currentSettings(t.inst.paths.settings);
    saveSettings(t.inst.paths.settings, { ...s, backup: { ...s.backup, continuous: { ...s.backup.continuous, enabled: true } } });
    const sup = new ContinuousSupervisor(() => t.inst, { log: () => {} });
    cleanups.push(() => sup.stop());
    sup.start(200);
    const plan = continuousPlan(t.inst);
    await until("the first snapshot", () => replicaWindow(plan.replica).last);
    const a = await createDocument(t.inst, t.admin, null, { name: "a.pdf", body: body("content of a"), maxBytes: 1e6 });
    const b = await createDocument(t.inst, t.member, null, { name: "b.pdf", body: body("content of b"), maxBytes: 1e6 });
    await new Promise((r) => setTimeout(r, 2500));
    const before = new Date(Math.floor(Date.now() / 1000) * 1000);
    await new Promise((r) => setTimeout(r, 1100));
    const late = await createDocument(t.inst, t.admin, null, { name: "late.pdf", body: body("after the time"), maxBytes: 1e6 });
    deleteDocument(t.inst, t.admin, null, a.id);
    deleteDocument(t.inst, t.member, null, b.id);
    expect(emptyTrash(t.inst, t.admin, null)).toBe(2); // rows gone; files kept for the window
    await until("the deletions to reach the replica", () => replicaWindow(plan.replica).last!.getTime() > before.getTime(), 5000);

    const source = pointInTimeSource(t.inst, before);
    const r = await browseBackup(t.inst, t.admin, source);
    expect(r).toMatchObject({ kind: "point_in_time", created_at: before.toISOString(), has_vault: true });
    expect(Object.fromEntries(r.documents.map((d) => [d.name, d.state]))).toEqual({ "a.pdf": "deleted_since", "b.pdf": "deleted_since" });
    expect((await browseBackup(t.inst, t.member, source)).documents.map((d) => d.name)).toEqual(["b.pdf"]);

    expect(await restoreDocuments(t.inst, t.admin, null, source, { ids: [a.id] })).toMatchObject([{ id: a.id, name: "a.pdf" }]);
    expect(listDocuments(t.inst, t.admin).map((d) => d.name).sort()).toEqual(["a.pdf", "late.pdf"]);
    expect(listDocuments(t.inst, t.member)).toEqual([]);
    expect(fs.readFileSync(blobPath(t.inst.paths, a.sha256), "utf8")).toBe("content of a");
    expect(late.id).toBeGreaterThan(b.id);

    // A file the window no longer keeps: said as such, nothing changes.
    fs.rmSync(blobPath(t.inst.paths, b.sha256));
    await expect(restoreDocuments(t.inst, t.admin, null, source, { ids: [b.id] })).rejects.toMatchObject({ status: 422, code: "CONTINUOUS_FILES_GONE" });
    expect(listDocuments(t.inst, t.member)).toEqual([]);
    expect(() => pointInTimeSource(t.inst, new Date(Date.now() + 3600_000))).toThrow(expect.objectContaining({ code: "OUTSIDE_WINDOW" }));
  }, 60_000);
});
