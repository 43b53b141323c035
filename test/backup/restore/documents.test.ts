import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import Database from "better-sqlite3";
import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { writeArchive, packArchive } from "@/lib/backup/format/writer";
import { createDocument, deleteDocument } from "@/lib/vault/documents";
import { archiveSource, browseBackup, clearBrowseCache, lastFetch, lastRead, storedSource, type BackupSource } from "@/lib/backup/restore/browse";
import { writeStoredBackup } from "@/lib/backup/local/stored";
import { currentBackupDir } from "@/lib/backup/local/directory";
import { restoreDocuments } from "@/lib/backup/restore/documents";
import { makeSetUpInstance } from "../../support/instance";
import { unpackToMemory } from "../../support/archive";
import { tarOf, gz, replaceMember, sha256 } from "../../support/hostile";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const fileSource = (file: string, name = path.basename(file)): BackupSource =>
  archiveSource(name, { version: async () => `${fs.statSync(file).size}:${fs.statSync(file).mtimeMs}`, open: async () => fs.createReadStream(file) });

async function setUp() {
  const t = await makeSetUpInstance();
  cleanups.push(() => {
    clearBrowseCache(t.inst);
    t.cleanup();
  });
  const big = crypto.randomBytes(4 * 1024 * 1024);
  const a = await createDocument(t.inst, t.admin, null, { name: "contract.pdf", body: Readable.from([Buffer.from("contract v1")]), maxBytes: 1e9 });
  const b = await createDocument(t.inst, t.member, null, { name: "notes.txt", body: Readable.from([Buffer.from("mia's notes")]), maxBytes: 1e9 });
  const c = await createDocument(t.inst, t.admin, null, { name: "photo.bin", body: Readable.from([big]), maxBytes: 1e9 });
  const file = path.join(t.dir, "coffer_full_20261206_120000Z.tar.gz");
  await writeArchive(t.inst, fs.createWriteStream(file), { scope: "full", trigger: "manual" });
  return { ...t, a, b, c, big, file, source: fileSource(file) };
}

const live = (t: Awaited<ReturnType<typeof setUp>>) => t.inst.db.prepare("SELECT id, owner_id, name, sha256, deleted_at FROM documents ORDER BY id").all();

describe("browsing a stored backup", () => {
  it("lists the documents with their state against now: same, changed, deleted_since (trashed counts)", async () => {
    const t = await setUp();
    deleteDocument(t.inst, t.admin, null, t.a.id); // trashed
    t.inst.db.prepare("UPDATE documents SET name = 'renamed.txt' WHERE id = ?").run(t.b.id);
    const r = await browseBackup(t.inst, t.admin, t.source);
    const states = Object.fromEntries(r.documents.map((d) => [d.name, d.state]));
    expect(states).toEqual({ "contract.pdf": "deleted_since", "notes.txt": "changed", "photo.bin": "same" });
    expect(r.documents.find((d) => d.name === "notes.txt")!.owner).toBe("mia");
    expect((await browseBackup(t.inst, t.admin, t.source, { q: "CONTR" })).documents.map((d) => d.name)).toEqual(["contract.pdf"]);
  });

  it("reads the archive only up to coffer.db: a copy cut off in the middle of the vault still lists, and few bytes were read", async () => {
    const t = await setUp();
    const size = fs.statSync(t.file).size;
    const cut = path.join(t.dir, "coffer_full_20261206_130000Z.tar.gz");
    fs.writeFileSync(cut, fs.readFileSync(t.file).subarray(0, Math.floor(size / 2)));
    const r = await browseBackup(t.inst, t.admin, fileSource(cut));
    expect(r.documents).toHaveLength(3);
    expect(lastRead().get(path.basename(cut))!).toBeLessThan(size / 4);
  });

  it("caches the unpacked database in .staging, one directory per browsed backup", async () => {
    const t = await setUp();
    await browseBackup(t.inst, t.admin, t.source);
    await browseBackup(t.inst, t.admin, t.source);
    const dirs = fs.readdirSync(t.inst.paths.staging);
    expect(dirs).toHaveLength(1);
    expect(fs.existsSync(path.join(t.inst.paths.staging, dirs[0], "browse.json"))).toBe(true);
  });

  it("a member sees only their own documents", async () => {
    const t = await setUp();
    const r = await browseBackup(t.inst, t.member, t.source);
    expect(r.documents.map((d) => d.name)).toEqual(["notes.txt"]);
  });

  it("refuses a database whose hash names a path (../) before any path is built", async () => {
    const t = await setUp();
    const members = [...(await unpackToMemory(t.file))].map(([name, data]) => ({ name, data }));
    const dbFile = path.join(t.dir, "evil.db");
    fs.writeFileSync(dbFile, members.find((m) => m.name === "coffer.db")!.data);
    const db = new Database(dbFile);
    db.prepare("UPDATE documents SET sha256 = ? WHERE id = ?").run("../../../../etc/passwd", t.a.id);
    db.close();
    const data = fs.readFileSync(dbFile);
    const evil = replaceMember(members, "coffer.db", data);
    const file = path.join(t.dir, "coffer_full_20261206_140000Z.tar.gz");
    fs.writeFileSync(file, gz(tarOf(evil)));
    await expect(browseBackup(t.inst, t.admin, fileSource(file))).rejects.toMatchObject({ code: "DB_BAD_HASH", status: 422 });
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]);
  });
});

describe("an encrypted backup", () => {
  it("needs its key to be browsed and restored; the right passphrase opens it, a wrong one does not reuse the cache", async () => {
    const t = await setUp();
    const file = path.join(t.dir, "coffer_full_20261206_160000Z.tar.gz.age");
    await packArchive(t.inst, fs.createWriteStream(file), { scope: "full", trigger: "manual", encryptTo: { passphrase: "correct horse", logN: 10 } });
    const src = fileSource(file);
    await expect(browseBackup(t.inst, t.admin, src)).rejects.toMatchObject({ code: "KEY_REQUIRED" });
    const r = await browseBackup(t.inst, t.admin, src, { keys: { passphrase: "correct horse" } });
    expect(r.encrypted).toBe(true);
    expect(r.documents).toHaveLength(3);
    await expect(browseBackup(t.inst, t.admin, src, { keys: { passphrase: "wrong" } })).rejects.toMatchObject({ code: "KEY_MISMATCH" });
    await expect(restoreDocuments(t.inst, t.admin, null, src, { ids: [t.a.id] })).rejects.toMatchObject({ code: "KEY_REQUIRED" });
  });
});

describe("restoring chosen documents", () => {
  it("keeps a free id, gives a taken one a new id, suffixes a name clash, and gives a missing owner's document to the admin", async () => {
    const t = await setUp();
    deleteDocument(t.inst, t.admin, null, t.a.id);
    t.inst.db.prepare("DELETE FROM documents WHERE id = ?").run(t.a.id); // gone for good
    // notes.txt: id taken by a changed version of the same name
    t.inst.db.prepare("UPDATE documents SET sha256 = ? WHERE id = ?").run(t.a.sha256, t.b.id);
    const out = await restoreDocuments(t.inst, t.admin, null, t.source, { ids: [t.a.id, t.b.id] }, { now: new Date("2026-12-07T10:00:00Z") });
    expect(out[0]).toMatchObject({ id: t.a.id, original_id: t.a.id, name: "contract.pdf", owner: "admin" });
    expect(out[1].id).not.toBe(t.b.id);
    expect(out[1]).toMatchObject({ original_id: t.b.id, name: "notes (restored 2026-12-07).txt", owner: "mia" });
    // the blob came from the archive and is the right one
    expect(sha256(fs.readFileSync(path.join(t.inst.paths.vault, t.a.sha256.slice(0, 2), t.a.sha256)))).toBe(t.a.sha256);
    const audit = t.inst.db.prepare("SELECT detail FROM audit_log WHERE action = 'document.restore_from_backup'").pluck().all() as string[];
    expect(audit).toHaveLength(2);
    expect(JSON.parse(audit[0]).backup).toBe(path.basename(t.file));
  });

  it("a document whose owner is gone comes back owned by the restoring admin", async () => {
    const t = await setUp();
    t.inst.db.prepare("DELETE FROM documents WHERE id = ?").run(t.b.id);
    t.inst.db.prepare("DELETE FROM users WHERE id = ?").run(t.member.id);
    const out = await restoreDocuments(t.inst, t.admin, null, t.source, { ids: [t.b.id] });
    expect(out[0].owner).toBe("admin");
  });

  it("everything deleted since: only those, the rest untouched", async () => {
    const t = await setUp();
    deleteDocument(t.inst, t.admin, null, t.a.id);
    const out = await restoreDocuments(t.inst, t.admin, null, t.source, { deleted_since: true });
    expect(out.map((o) => o.original_id)).toEqual([t.a.id]);
    expect(out[0].id).not.toBe(t.a.id); // the trashed row still holds the id
  });

  it("an id the backup lacks is refused and nothing changes", async () => {
    const t = await setUp();
    const before = live(t);
    await expect(restoreDocuments(t.inst, t.admin, null, t.source, { ids: [t.a.id, 999] })).rejects.toMatchObject({ code: "DOCUMENT_NOT_IN_BACKUP", status: 422 });
    expect(live(t)).toEqual(before);
  });

  it("a member cannot restore another's document (403), and restores their own", async () => {
    const t = await setUp();
    t.inst.db.prepare("DELETE FROM documents WHERE id IN (?, ?)").run(t.a.id, t.b.id);
    await expect(restoreDocuments(t.inst, t.member, null, t.source, { ids: [t.a.id] })).rejects.toMatchObject({ status: 403 });
    expect((await restoreDocuments(t.inst, t.member, null, t.source, { ids: [t.b.id] }))[0].owner).toBe("mia");
  });

  it("a blob that fails its hash is refused (422) and nothing changes", async () => {
    const t = await setUp();
    const members = [...(await unpackToMemory(t.file))].map(([name, data]) => ({ name, data }));
    const blobName = `vault/${t.c.sha256.slice(0, 2)}/${t.c.sha256}`;
    const bad = Buffer.from(t.big);
    bad[100] ^= 1;
    const file = path.join(t.dir, "coffer_full_20261206_150000Z.tar.gz");
    fs.writeFileSync(file, gz(tarOf(members.map((m) => (m.name === blobName ? { ...m, data: bad } : m)))));
    t.inst.db.prepare("DELETE FROM documents WHERE id = ?").run(t.c.id);
    fs.rmSync(path.join(t.inst.paths.vault, t.c.sha256.slice(0, 2), t.c.sha256));
    const before = live(t);
    await expect(restoreDocuments(t.inst, t.admin, null, fileSource(file), { ids: [t.c.id] })).rejects.toMatchObject({ code: "DOCUMENT_HASH_MISMATCH", status: 422 });
    expect(live(t)).toEqual(before);
    expect(fs.existsSync(path.join(t.inst.paths.vault, t.c.sha256.slice(0, 2), t.c.sha256))).toBe(false);
  });
});

describe("coffer restore FILE --documents / --deleted-since", () => {
  it("brings chosen documents back while the instance is open elsewhere (through the lock), and refuses an id the backup lacks", async () => {
    const t = await setUp();
    t.inst.db.prepare("DELETE FROM documents WHERE id = ?").run(t.a.id);
    const bin = path.join(process.cwd(), "bin", "coffer.cjs");
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, "--data-dir", t.inst.paths.root, "--json", ...args], { encoding: "utf8", env: { ...process.env, COFFER_DATA_DIR: "" } });
    const bad = run("restore", t.file, "--documents", "999");
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain("DOCUMENT_NOT_IN_BACKUP");
    const ok = run("restore", t.file, "--documents", String(t.a.id));
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).restored[0]).toMatchObject({ id: t.a.id, name: "contract.pdf" });
    expect(t.inst.db.prepare("SELECT name FROM documents WHERE id = ?").pluck().get(t.a.id)).toBe("contract.pdf");
    const again = run("restore", t.file, "--deleted-since");
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).restored).toEqual([]);
  });
});

/** The setup's backup with its coffer.db changed by `alter` (SQL run on a copy), as someone who can write the backup directory would. */
async function altered(t: Awaited<ReturnType<typeof setUp>>, name: string, alter: (db: InstanceType<typeof Database>) => void) {
  const members = [...(await unpackToMemory(t.file))].map(([n, data]) => ({ name: n, data }));
  const dbFile = path.join(t.dir, `${name}.db`);
  fs.writeFileSync(dbFile, members.find((m) => m.name === "coffer.db")!.data);
  const db = new Database(dbFile);
  alter(db);
  db.close();
  const file = path.join(t.dir, `coffer_full_20261206_${name}.tar.gz`);
  fs.writeFileSync(file, gz(tarOf(replaceMember(members, "coffer.db", fs.readFileSync(dbFile)))));
  return fileSource(file);
}

describe("an altered backup (an outside review's attacks)", () => {
  it("a view or trigger Coffer never makes is refused before any query of Coffer's runs through it (a recursive users view hung the server)", async () => {
    const t = await setUp();
    const view = await altered(t, "150000Z", (db) => {
      db.exec("ALTER TABLE users RENAME TO users_old");
      db.exec("CREATE VIEW users AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x AS id, 'u' || x AS username, '' AS created_at FROM c");
    });
    await expect(browseBackup(t.inst, t.member, view)).rejects.toMatchObject({ code: "DB_FOREIGN", status: 422 });
    const trigger = await altered(t, "151000Z", (db) => db.exec("CREATE TRIGGER stay AFTER INSERT ON documents BEGIN DELETE FROM users; END"));
    await expect(browseBackup(t.inst, t.admin, trigger)).rejects.toMatchObject({ code: "DB_FOREIGN" });
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]);
  });

  it("a document id near 2^53 comes back with a new id, so later ids stay ones JavaScript counts exactly", async () => {
    const t = await setUp();
    const src = await altered(t, "152000Z", (db) => db.prepare("UPDATE documents SET id = ? WHERE id = ?").run(Number.MAX_SAFE_INTEGER, t.b.id));
    deleteDocument(t.inst, t.member, null, t.b.id);
    const [back] = await restoreDocuments(t.inst, t.member, null, src, { ids: [Number.MAX_SAFE_INTEGER] });
    expect(back.original_id).toBe(Number.MAX_SAFE_INTEGER);
    expect(back.id).toBeLessThan(2 ** 31);
    const next = await createDocument(t.inst, t.admin, null, { name: "next.txt", body: Readable.from([Buffer.from("next")]), maxBytes: 1e6 });
    expect(next.id).toBeLessThan(2 ** 31);
  });

  it("a new account that got a removed member's id and name is someone else: the old member's documents are not theirs", async () => {
    const t = await setUp();
    // The same id and username, made at another time (as when a removed member's id is given again).
    const src = await altered(t, "153000Z", (db) => db.prepare("UPDATE users SET created_at = '2020-01-01T00:00:00.000Z' WHERE id = ?").run(t.member.id));
    expect((await browseBackup(t.inst, t.member, src)).documents).toEqual([]);
    await expect(restoreDocuments(t.inst, t.member, null, src, { ids: [t.b.id] })).rejects.toMatchObject({ status: 403 });
    // Usernames compare as SQLite does, without case.
    const upper = await altered(t, "154000Z", (db) => db.prepare("UPDATE users SET username = upper(username) WHERE id = ?").run(t.member.id));
    expect((await browseBackup(t.inst, t.member, upper)).documents.map((d) => d.name)).toEqual(["notes.txt"]);
  });

  it("a size that differs from the file already in the vault is refused, and nothing changes", async () => {
    const t = await setUp();
    const src = await altered(t, "155000Z", (db) => db.prepare("UPDATE documents SET size = ? WHERE id = ?").run(2 ** 40, t.a.id));
    deleteDocument(t.inst, t.admin, null, t.a.id);
    const before = live(t);
    await expect(restoreDocuments(t.inst, t.admin, null, src, { ids: [t.a.id] })).rejects.toMatchObject({ code: "DOCUMENT_HASH_MISMATCH", status: 422 });
    expect(live(t)).toEqual(before);
  });
});

describe("a stored backup with its seek index", () => {
  /**
   * Six 1 MiB documents in a backup written into the backup directory; `first` and `second` of them
   * (first in the archive, and fifth: blobs go in by hash) then gone from the instance, and a byte of
   * `first` flipped in the archive.
   */
  async function storedPair() {
    const t = await makeSetUpInstance();
    cleanups.push(() => {
      clearBrowseCache(t.inst);
      t.cleanup();
    });
    const docs = [];
    for (const name of ["scan-a.bin", "scan-b.bin", "scan-c.bin", "scan-d.bin", "scan-e.bin", "scan-f.bin"]) {
      const body = crypto.randomBytes(1024 * 1024);
      docs.push({ body, ...(await createDocument(t.inst, t.admin, null, { name, body: Readable.from([body]), maxBytes: 1e9 })) });
    }
    docs.sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1));
    const [first, second] = [docs[0], docs[4]];
    const stored = await writeStoredBackup(t.inst, { scope: "full", trigger: "manual" });
    const file = path.join(currentBackupDir(t.inst), stored.name);
    for (const d of [first, second]) {
      t.inst.db.prepare("DELETE FROM documents WHERE id = ?").run(d.id);
      fs.rmSync(path.join(t.inst.paths.vault, d.sha256.slice(0, 2), d.sha256));
    }
    // Flip a byte in the middle of the first one's content, where the archive holds it as it is (incompressible
    // content is stored), away from the archive's first and last 64 KiB (the index's fingerprint of it).
    const bytes = fs.readFileSync(file);
    // A slice of 64 bytes, tried at a few places: one may straddle a stored block's 5-byte framing (every 64 KiB).
    const at = [0, 1, 2].map((k) => bytes.indexOf(first.body.subarray(512 * 1024 + k * 1000, 512 * 1024 + k * 1000 + 64))).find((i) => i > 0)!;
    expect(at).toBeGreaterThan(0);
    bytes[at + 10] ^= 1;
    fs.chmodSync(file, 0o600);
    fs.writeFileSync(file, bytes);
    return { ...t, first, second, name: stored.name, file, sidecar: path.join(currentBackupDir(t.inst), `.${stored.name}.idx`) };
  }

  const hashOf = (t: { inst: { paths: { vault: string } } }, sha: string) => sha256(fs.readFileSync(path.join(t.inst.paths.vault, sha.slice(0, 2), sha)));

  it("restores one document by seeking to it: damage earlier in the archive is never read; without the index the one-pass read meets it (422)", async () => {
    const t = await storedPair();
    expect(fs.existsSync(t.sidecar)).toBe(true);
    const [back] = await restoreDocuments(t.inst, t.admin, null, await storedSource(t.inst, t.name), { ids: [t.second.id] });
    expect(back).toMatchObject({ id: t.second.id, name: t.second.name });
    expect(hashOf(t, t.second.sha256)).toBe(t.second.sha256);
    expect(lastFetch().get(t.name)).toMatchObject({ index: "used", by_seek: 1, by_pass: 0 });
    // The damaged one is refused all the same: its hash is checked whichever way it is read.
    await expect(restoreDocuments(t.inst, t.admin, null, await storedSource(t.inst, t.name), { ids: [t.first.id] })).rejects.toMatchObject({ code: "DOCUMENT_HASH_MISMATCH", status: 422 });

    t.inst.db.prepare("DELETE FROM documents WHERE id = ?").run(t.second.id);
    fs.rmSync(path.join(t.inst.paths.vault, t.second.sha256.slice(0, 2), t.second.sha256));
    fs.rmSync(t.sidecar);
    await expect(restoreDocuments(t.inst, t.admin, null, await storedSource(t.inst, t.name), { ids: [t.second.id] })).rejects.toMatchObject({ code: "DOCUMENT_HASH_MISMATCH", status: 422 });
    expect(lastFetch().get(t.name)).toMatchObject({ index: "absent", by_seek: 0 });
    expect(fs.existsSync(path.join(t.inst.paths.vault, t.second.sha256.slice(0, 2), t.second.sha256))).toBe(false);
  });

  it("coffer restore FILE --documents seeks through the index beside the file", async () => {
    const t = await storedPair();
    const bin = path.join(process.cwd(), "bin", "coffer.cjs");
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, "--data-dir", t.inst.paths.root, "--json", ...args], { encoding: "utf8", env: { ...process.env, COFFER_DATA_DIR: "" } });
    const ok = run("restore", t.file, "--documents", String(t.second.id));
    expect(ok.status, ok.stderr).toBe(0);
    expect(hashOf(t, t.second.sha256)).toBe(t.second.sha256);
    // A copy elsewhere, without its index: the one-pass read meets the damage first.
    const copy = path.join(t.dir, t.name);
    fs.copyFileSync(t.file, copy);
    const bad = run("restore", copy, "--documents", String(t.first.id));
    expect(bad.status).not.toBe(0);
    expect(bad.stdout + bad.stderr).toContain("DOCUMENT_HASH_MISMATCH");
  });
});
