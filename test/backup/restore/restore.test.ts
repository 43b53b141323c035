import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import Database from "better-sqlite3";
import zlib from "node:zlib";
import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { readArchive } from "@/lib/backup/format/reader";
import { writeArchive } from "@/lib/backup/format/writer";
import { stageArchive, discardStaged } from "@/lib/backup/restore/staging";
import { applyRestore } from "@/lib/backup/restore/apply";
import { SCHEMA_VERSION } from "@/lib/db/migrations";
import { APP_VERSION } from "@/lib/version";
import { listStoredBackups } from "@/lib/backup/local/repository";
import { isSetupComplete, openInstance, closeInstance, type Instance } from "@/lib/instance";
import { createDocument, listDocuments, openDocumentStream } from "@/lib/vault/documents";
import { verifyLogin } from "@/lib/auth/users";
import { ensureSetupCode } from "@/lib/auth/setup";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret, decryptSecret } from "@/lib/settings/secrets";
import { AppError } from "@/lib/errors";
import { makeInstance, makeSetUpInstance, tempDir } from "../../support/instance";
import { unpackToMemory } from "../../support/archive";
import { tarOf, gz, paxRecord, withMeta, replaceMember, sha256, type Entry } from "../../support/hostile";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

let SOURCE: Entry[]; // the members of a real full archive, in order
const TEXT = Buffer.from("The quick brown fox. ".repeat(5000));
const PHOTO = crypto.randomBytes(100_000);

beforeAll(async () => {
  const t = await makeSetUpInstance();
  await createDocument(t.inst, t.admin, null, { name: "a.txt", body: Readable.from([TEXT]), maxBytes: 1e9 });
  await createDocument(t.inst, t.member, null, { name: "b.jpg", body: Readable.from([PHOTO]), maxBytes: 1e9 });
  const s = currentSettings(t.inst.paths.settings);
  saveSettings(t.inst.paths.settings, { ...s, backup: { ...s.backup, notify: { webhook_url: encryptSecret(t.inst.configKey, "https://hooks.example/x") } } });
  const file = path.join(t.dir, "source.tar.gz");
  await writeArchive(t.inst, fs.createWriteStream(file), { scope: "full", trigger: "manual" });
  SOURCE = [...(await unpackToMemory(file))].map(([name, data]) => ({ name, data }));
});

/** What a rejected restore must leave untouched: every live file but the staging area and SQLite's sidecars. */
function fingerprint(inst: Instance): string {
  inst.db.pragma("wal_checkpoint(TRUNCATE)");
  const walk = (d: string): string[] =>
    fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(d, e.name);
      if (e.name === ".staging" || e.name.endsWith("-wal") || e.name.endsWith("-shm")) return [];
      return e.isDirectory() ? walk(p) : [`${path.relative(inst.paths.root, p)}:${sha256(fs.readFileSync(p))}`];
    });
  return walk(inst.paths.root).sort().join("\n");
}

async function expectRejected(archive: Buffer, code: string, opts: { maxBytes?: number; maxEntries?: number } = {}) {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  const before = fingerprint(t.inst);
  const outside = path.join(t.dir, "evil");
  let error: unknown;
  try {
    await stageArchive(t.inst, Readable.from([archive]), opts);
  } catch (err) {
    error = err;
  }
  expect(error, `expected ${code}`).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe(code);
  expect((error as AppError).status).toBeGreaterThanOrEqual(400);
  expect((error as AppError).status).toBeLessThan(500);
  expect((error as AppError).message).toMatch(/^[A-Z].*\.$/s);
  expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]);
  expect(fs.existsSync(outside)).toBe(false);
  expect(fs.existsSync("/tmp/evil-coffer")).toBe(false);
  expect(fingerprint(t.inst)).toBe(before);
}

const blobName = (b: Buffer) => `vault/${sha256(b).slice(0, 2)}/${sha256(b)}`;
const afterMeta = (extra: Entry[]) => [SOURCE[0], ...extra, ...SOURCE.slice(1)];

/** Hostile and broken archives, each with the code it must get (built lazily: SOURCE comes from beforeAll). */
const cases: [string, () => Buffer, string, { maxBytes?: number; maxEntries?: number }?][] = [
  ["path traversal ../x", () => gz(tarOf(afterMeta([{ name: "../evil", data: Buffer.from("x") }]))), "ARCHIVE_BAD_PATH"],
  ["absolute /tmp/evil-coffer", () => gz(tarOf(afterMeta([{ name: "/tmp/evil-coffer", data: Buffer.from("x") }]))), "ARCHIVE_BAD_PATH"],
  ["////x", () => gz(tarOf(afterMeta([{ name: "////tmp/evil-coffer", data: Buffer.from("x") }]))), "ARCHIVE_BAD_PATH"],
  ["backslashes", () => gz(tarOf(afterMeta([{ name: "vault\\..\\..\\evil", data: Buffer.from("x") }]))), "ARCHIVE_BAD_PATH"],
  ["a control character", () => gz(tarOf(afterMeta([{ name: "settings.yaml\u0001", data: Buffer.from("x") }]))), "ARCHIVE_BAD_PATH"],
  [
    "a PAX long name that resolves to ../../evil",
    () => gz(tarOf(afterMeta([{ name: "PaxHeader", type: "x", data: paxRecord("path", "../../evil") }, { name: "innocent", data: Buffer.from("x") }]))),
    "ARCHIVE_BAD_PATH",
  ],
  [
    "a GNU long name that resolves to ../evil",
    () => gz(tarOf(afterMeta([{ name: "././@LongLink", type: "L", data: Buffer.from("../evil\0") }, { name: "innocent", data: Buffer.from("x") }]))),
    "ARCHIVE_BAD_PATH",
  ],
  ["a symlink entry", () => gz(tarOf(afterMeta([{ name: "keys", type: "2", linkname: "/etc" }]))), "ARCHIVE_BAD_ENTRY_TYPE"],
  [
    "a symlink followed by a file written through it",
    () => gz(tarOf(afterMeta([{ name: "vault/ab", type: "2", linkname: "/tmp" }, { name: "vault/ab/evil-coffer", data: Buffer.from("x") }]))),
    "ARCHIVE_BAD_ENTRY_TYPE",
  ],
  ["a hardlink entry", () => gz(tarOf(afterMeta([{ name: "coffer.db", type: "1", linkname: "/etc/passwd" }]))), "ARCHIVE_BAD_ENTRY_TYPE"],
  ["a character device", () => gz(tarOf(afterMeta([{ name: "vault/00/dev", type: "3" }]))), "ARCHIVE_BAD_ENTRY_TYPE"],
  ["a block device", () => gz(tarOf(afterMeta([{ name: "vault/00/dev", type: "4" }]))), "ARCHIVE_BAD_ENTRY_TYPE"],
  ["a FIFO", () => gz(tarOf(afterMeta([{ name: "vault/00/fifo", type: "6" }]))), "ARCHIVE_BAD_ENTRY_TYPE"],
  ["a duplicate member", () => gz(tarOf([...SOURCE.slice(0, 3), SOURCE[2], ...SOURCE.slice(3)])), "ARCHIVE_DUPLICATE_MEMBER"],
  ["a member not in the whitelist", () => gz(tarOf(afterMeta([{ name: "evil.sh", data: Buffer.from("rm -rf /") }]))), "ARCHIVE_BAD_MEMBER"],
  ["a directory not in the whitelist", () => gz(tarOf(afterMeta([{ name: "etc/", type: "5" }]))), "ARCHIVE_BAD_MEMBER"],
  ["a blob with a name that is not a hash", () => gz(tarOf(afterMeta([{ name: "vault/ab/notahash", data: Buffer.from("x") }]))), "ARCHIVE_BAD_MEMBER"],
  [
    "entries after the end of the archive",
    () => gz(Buffer.concat([tarOf(SOURCE), tarOf([{ name: blobName(Buffer.from("late")), data: Buffer.from("late") }])])),
    "ARCHIVE_TRAILING_DATA",
  ],
  [
    "an entry after a single zero block",
    () => gz(Buffer.concat([tarOf(SOURCE, { end: false }), Buffer.alloc(512), tarOf([{ name: blobName(Buffer.from("late")), data: Buffer.from("late") }])])),
    "ARCHIVE_AFTER_END",
  ],
  ["a second gzip member appended", () => Buffer.concat([gz(tarOf(SOURCE)), gz(tarOf([{ name: "evil.sh", data: Buffer.from("x") }]))]), "ARCHIVE_TRAILING_DATA"],
  ["trailing garbage after the gzip member", () => Buffer.concat([gz(tarOf(SOURCE)), Buffer.from("garbage that is not gzip")]), "ARCHIVE_TRAILING_DATA"],
  ["truncated mid-entry", () => gz(tarOf(SOURCE)).subarray(0, Math.floor(gz(tarOf(SOURCE)).length * 0.6)), "ARCHIVE_TRUNCATED"],
  ["truncated exactly at an entry boundary", () => gz(tarOf(SOURCE.slice(0, 4), { end: false })), "ARCHIVE_TRUNCATED"],
  ["not gzip at all", () => crypto.randomBytes(5000), "ARCHIVE_NOT_GZIP"],
  ["a plain tar, not gzipped", () => tarOf(SOURCE), "ARCHIVE_NOT_GZIP"],
  ["an empty file", () => Buffer.alloc(0), "ARCHIVE_TRUNCATED"],
  ["missing meta", () => gz(tarOf(SOURCE.slice(1))), "META_MISSING"],
  ["meta that is not JSON", () => gz(tarOf([{ name: "backup_meta.json", data: Buffer.from("{nope") }, ...SOURCE.slice(1)])), "META_INVALID"],
  ["bad magic", () => gz(tarOf(withMeta(SOURCE, (m) => (m.magic = "something-else")))), "META_BAD_MAGIC"],
  ["format_version 2", () => gz(tarOf(withMeta(SOURCE, (m) => (m.format_version = 2)))), "FORMAT_TOO_NEW"],
  ["a database schema newer than this Coffer's", () => gz(tarOf(withMeta(SOURCE, (m) => ((m.schema_version = SCHEMA_VERSION + 1), (m.app_version = "9.0.0"))))), "FORMAT_TOO_NEW"],
  ["meta with wrong types", () => gz(tarOf(withMeta(SOURCE, (m) => (m.vault.objects = "many")))), "META_INVALID"],
  ["an unknown scope", () => gz(tarOf(withMeta(SOURCE, (m) => (m.scope = "everything")))), "META_INVALID"],
  [
    "a flipped byte in the database",
    () => {
      const db = Buffer.from(SOURCE[1].data!);
      db[db.length - 100] ^= 0xff;
      return gz(tarOf(SOURCE.map((e) => (e.name === "coffer.db" ? { ...e, data: db } : e))));
    },
    "CHECKSUM_MISMATCH",
  ],
  [
    "a blob whose content does not match its name",
    () => gz(tarOf(SOURCE.map((e) => (e.name === blobName(TEXT) ? { ...e, data: Buffer.from("swapped content") } : e)))),
    "CHECKSUM_MISMATCH",
  ],
  ["a missing blob", () => gz(tarOf(SOURCE.filter((e) => e.name !== blobName(PHOTO)))), "VAULT_INCOMPLETE"],
  [
    "a blob the database needs, missing from archive and meta alike",
    () =>
      gz(
        tarOf(
          withMeta(
            SOURCE.filter((e) => e.name !== blobName(PHOTO)),
            (m) => (m.vault = { objects: 1, bytes: TEXT.length }),
          ),
        ),
      ),
    "VAULT_INCOMPLETE",
  ],
  ["a database that is not SQLite", () => gz(tarOf(replaceMember(SOURCE, "coffer.db", Buffer.from("just some text, not a database".repeat(100))))), "DB_NOT_SQLITE"],
  [
    "another application's database",
    () => {
      const f = path.join(tempDir(), "other.db");
      const other = new Database(f);
      other.exec("CREATE TABLE documents (sha256 TEXT); PRAGMA application_id = 1234;");
      other.close();
      return gz(tarOf(replaceMember(SOURCE, "coffer.db", fs.readFileSync(f))));
    },
    "DB_FOREIGN",
  ],
  [
    "a database that fails integrity_check",
    () => {
      const db = Buffer.from(SOURCE[1].data!);
      // Scribble over the second page (a b-tree page) but keep the header intact.
      crypto.randomBytes(2048).copy(db, 4096 + 8);
      return gz(tarOf(replaceMember(SOURCE, "coffer.db", db)));
    },
    "DB_CORRUPT",
  ],
  ["settings that are not valid", () => gz(tarOf(replaceMember(SOURCE, "settings.yaml", Buffer.from("backup: [\n")))), "SETTINGS_INVALID"],
  ["a key of the wrong size", () => gz(tarOf(replaceMember(SOURCE, "keys/secret.key", Buffer.from("short")))), "KEYS_INVALID"],
  [
    "a gzip bomb over the cap",
    () => gz(tarOf([SOURCE[0], { name: "coffer.db", data: Buffer.alloc(64 * 1024 * 1024) }, ...SOURCE.slice(2)])),
    "TOO_LARGE",
    { maxBytes: 16 * 1024 * 1024 },
  ],
  [
    "too many entries",
    () => gz(tarOf(afterMeta(Array.from({ length: 256 }, (_, i) => ({ name: `vault/${i.toString(16).padStart(2, "0")}/`, type: "5" }))))),
    "TOO_MANY_ENTRIES",
    { maxEntries: 100 },
  ],
];


describe("the malicious and broken archive catalogue", () => {
  it("accepts the untouched archive (the baseline the cases below break)", async () => {
    const t = await makeInstance();
    cleanups.push(t.cleanup);
    const preview = await stageArchive(t.inst, Readable.from([gz(tarOf(SOURCE))]));
    expect(preview).toMatchObject({ scope: "full", vault: { objects: 2 }, tables: { users: 2, documents: 2 } });
    discardStaged(t.inst, preview.id);
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]);
  });

  it.each(cases)("%s → rejected, nothing written, instance unchanged", async (_name, build, code, opts) => {
    await expectRejected(build(), code, opts);
  });

  it("an archive from a newer Coffer is refused with a sentence naming both versions", async () => {
    const t = await makeInstance();
    cleanups.push(t.cleanup);
    const newer = gz(tarOf(withMeta(SOURCE, (m) => ((m.schema_version = SCHEMA_VERSION + 1), (m.app_version = "9.0.0")))));
    await expect(stageArchive(t.inst, Readable.from([newer]))).rejects.toMatchObject({
      code: "FORMAT_TOO_NEW",
      message: `This backup was made by Coffer 9.0.0 (database schema ${SCHEMA_VERSION + 1}); this is Coffer ${APP_VERSION} (schema ${SCHEMA_VERSION}). Upgrade Coffer to 9.0.0 or later, then restore.`,
    });
  });
});

describe("apply", () => {
  it("round trip onto a fresh instance: documents, accounts and secrets come back; setup is complete", async () => {
    const b = makeInstance();
    cleanups.push(b.cleanup);
    ensureSetupCode(b.inst, {});
    const preview = await stageArchive(b.inst, Readable.from([gz(tarOf(SOURCE))]));
    expect(isSetupComplete(b.inst)).toBe(false);
    const r = await applyRestore(b.inst, preview.id, { id: null, name: "setup" });
    expect(r.prerestore).toBeNull(); // nothing to keep on a fresh instance
    const inst = r.instance;
    expect(b.inst.db.open).toBe(false); // the old handle is closed; the caller serves the one returned
    cleanups.push(() => inst.db.close());
    expect(isSetupComplete(inst)).toBe(true);
    expect(fs.existsSync(inst.paths.setupToken)).toBe(false);
    expect((await verifyLogin(inst, "admin", "admin-password-1", "10.5.5.5")).ok).toBe(true);
    expect((await verifyLogin(inst, "mia", "member-password-1", "10.5.5.5")).ok).toBe(true);
    const admin = inst.db.prepare("SELECT * FROM users WHERE username = 'admin'").get() as never;
    const docs = listDocuments(inst, admin);
    expect(docs.map((d) => d.name).sort()).toEqual(["a.txt", "b.jpg"]);
    for (const d of docs) {
      const chunks: Buffer[] = [];
      for await (const c of openDocumentStream(inst, d)) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks)).toEqual(d.name === "a.txt" ? TEXT : PHOTO);
    }
    const enc = currentSettings(inst.paths.settings).backup.notify.webhook_url!;
    expect(decryptSecret(inst.configKey, enc)).toBe("https://hooks.example/x");
    expect(inst.db.prepare("SELECT action FROM audit_log").pluck().all()).toContain("restore.apply");
    expect(fs.readdirSync(inst.paths.staging)).toEqual([]);
    expect(fs.existsSync(path.join(inst.paths.root, "restore-journal.json"))).toBe(false);
  });

  it("on a running instance: a prerestore archive first, sessions end, and restoring it undoes the restore", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    await createDocument(t.inst, t.admin, null, { name: "mine.txt", body: Readable.from([Buffer.from("only here")]), maxBytes: 1e6 });
    const sv = t.inst.db.prepare("SELECT session_version FROM users WHERE username = 'admin'").pluck().get() as number;
    const preview = await stageArchive(t.inst, Readable.from([gz(tarOf(SOURCE))]));
    const r = await applyRestore(t.inst, preview.id, { id: t.admin.id, name: "admin" });
    expect(r.prerestore).toMatch(/^coffer_prerestore_/);
    let inst = r.instance;
    const admin = () => inst.db.prepare("SELECT * FROM users WHERE username = 'admin'").get() as never;
    expect(listDocuments(inst, admin()).map((d) => d.name).sort()).toEqual(["a.txt", "b.jpg"]);
    expect((await listStoredBackups(inst)).map((b) => b.scope)).toEqual(["prerestore"]);
    // Undo: the prerestore archive brings back the instance as it was.
    const undo = await stageArchive(inst, fs.createReadStream(path.join(inst.paths.backups, r.prerestore!)));
    expect(undo.scope).toBe("prerestore");
    inst = (await applyRestore(inst, undo.id, { id: null, name: "admin" })).instance;
    cleanups.push(() => inst.db.close());
    expect(listDocuments(inst, admin()).map((d) => d.name)).toEqual(["mine.txt"]);
    expect(inst.db.prepare("SELECT session_version FROM users WHERE username = 'admin'").pluck().get()).toBeGreaterThan(sv);
  });

  it("a vault-only archive can be previewed but not applied", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const file = path.join(t.dir, "v.tar.gz");
    await writeArchive(t.inst, fs.createWriteStream(file), { scope: "vault", trigger: "manual" });
    const preview = await stageArchive(t.inst, fs.createReadStream(file));
    await expect(applyRestore(t.inst, preview.id, { id: null, name: "x" })).rejects.toMatchObject({ code: "SCOPE_NOT_RESTORABLE" });
  });

  it("an unknown or expired staged id is a 404", async () => {
    const t = makeInstance();
    cleanups.push(t.cleanup);
    await expect(applyRestore(t.inst, "0".repeat(32), { id: null, name: "x" })).rejects.toMatchObject({ status: 404 });
    await expect(applyRestore(t.inst, "../../etc", { id: null, name: "x" })).rejects.toMatchObject({ status: 404 });
  });
});

/** What readArchive says of a byte stream: "ok" or the error code. */
async function verdict(chunks: Buffer[], opts: { maxBytes?: number; maxEntries?: number } = {}): Promise<string> {
  try {
    await readArchive(Readable.from(chunks, { objectMode: false }), opts);
    return "ok";
  } catch (err) {
    return (err as AppError).code ?? `untyped: ${(err as Error).message}`;
  }
}

/** Cut `buf` at the given fractions into chunks (a cut inside a tar header splits it). */
function cut(buf: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < buf.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]);
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe("readArchive fed in random chunk sizes", () => {
  // gzip level 0 keeps the tar bytes' chunk boundaries where the input's are, so cuts land inside tar headers.
  const stored = (b: Buffer) => zlib.gzipSync(zlib.gunzipSync(b), { level: 0 });

  it("gives the same verdict as whole-buffer feeding, for the valid archive and every hostile one", async () => {
    const corpus: [string, Buffer, { maxBytes?: number; maxEntries?: number }][] = [
      ["valid", gz(tarOf(SOURCE)), {}],
      ["valid, stored", stored(gz(tarOf(SOURCE))), {}],
      ...cases.map(([name, build, , opts]) => [name, build(), opts ?? {}] as [string, Buffer, { maxBytes?: number; maxEntries?: number }]),
    ];
    const whole = new Map<string, string>();
    for (const [name, buf, opts] of corpus) whole.set(name, await verdict([buf], opts));
    expect(whole.get("valid")).toBe("ok");
    expect(whole.get("valid, stored")).toBe("ok");
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...corpus), fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 16 }), async ([name, buf, opts], sizes) => {
        expect(await verdict(cut(buf, sizes), opts), name).toBe(whole.get(name));
      }),
      { numRuns: 120 },
    );
  }, 120_000);

  it("reads the valid archive one byte at a time, every tar header split across chunks", async () => {
    const small = stored(gz(tarOf(SOURCE.filter((e) => e.name !== blobName(PHOTO) && e.name !== blobName(TEXT)).map((e) => e))));
    const noBlobs = stored(gz(tarOf(withMeta(SOURCE.filter((e) => !e.name.startsWith("vault/")), (m) => (m.vault = { objects: 0, bytes: 0 })))));
    expect(await verdict(cut(small, [1]))).toBe(await verdict([small]));
    expect(await verdict(cut(noBlobs, [1]))).toBe("ok");
    // And a header cut right in its checksum field, then the rest: still whole.
    expect(await verdict(cut(noBlobs, [10 + 148, 3, 99999999]))).toBe("ok");
  }, 120_000);
});

describe("staged restores", () => {
  afterEach(() => vi.useRealTimers());

  it("expire after an hour: applying one is a 404 EXPIRED, and the next staging sweeps it away", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const old = await stageArchive(t.inst, Readable.from([gz(tarOf(SOURCE))]));
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([old.id]);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.parse(old.expires_at) + 1000);
    await expect(applyRestore(t.inst, old.id, { id: null, name: "x" })).rejects.toMatchObject({ status: 404, code: "EXPIRED" });
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]);
    const a = await stageArchive(t.inst, Readable.from([gz(tarOf(SOURCE))]));
    vi.setSystemTime(Date.parse(a.expires_at) + 1000);
    const b = await stageArchive(t.inst, Readable.from([gz(tarOf(SOURCE))]));
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([b.id]);
  });
});

/** A small real filesystem (tmpfs), so a full disk is a real ENOSPC. Needs root (CI runs as root). */
function smallDisk(opts: string): string {
  const dir = tempDir("coffer-small-disk-");
  execFileSync("mount", ["-t", "tmpfs", "-o", opts, "tmpfs", dir]);
  cleanups.push(() => {
    execFileSync("umount", ["-l", dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

describe.skipIf(process.getuid?.() !== 0)("a disk that fills while a restore is staged", () => {
  it("is 507 INSUFFICIENT_STORAGE before anything is written when the backup cannot fit, naming need and have", async () => {
    const root = path.join(smallDisk("size=4m"), "data");
    const inst = openInstance(root);
    cleanups.push(() => closeInstance(inst));
    const big = crypto.randomBytes(6 * 1024 * 1024);
    const archive = gz(tarOf(withMeta([...SOURCE, { name: blobName(big), data: big }], (m) => (m.vault = { objects: 3, bytes: m.vault.bytes + big.length }))));
    const err = await stageArchive(inst, Readable.from([archive]), { maxBytes: 1e12 }).catch((e) => e);
    expect(err).toMatchObject({ status: 507, code: "INSUFFICIENT_STORAGE", message: expect.stringMatching(/need about 6\.\d MB, have [\d.]+ (KB|MB)/) });
    expect(fs.readdirSync(inst.paths.staging)).toEqual([]);
  });

  it("is 507, not ARCHIVE_CORRUPT, when the disk fills half-way (no inodes left), and nothing is left behind", async () => {
    const root = path.join(smallDisk("size=64m,nr_inodes=40"), "data");
    const inst = openInstance(root);
    cleanups.push(() => closeInstance(inst));
    const blobs = Array.from({ length: 40 }, (_, i) => Buffer.from(`blob number ${i}`));
    const entries = withMeta([...SOURCE, ...blobs.map((b) => ({ name: blobName(b), data: b }))], (m) => (m.vault = { objects: 2 + blobs.length, bytes: m.vault.bytes + blobs.reduce((a, b) => a + b.length, 0) }));
    const err = await stageArchive(inst, Readable.from([gz(tarOf(entries))]), { maxBytes: 1e12 }).catch((e) => e);
    expect(err).toMatchObject({ status: 507, code: "INSUFFICIENT_STORAGE" });
    expect(err.message).toMatch(/^There is not enough free disk to stage this backup/);
    expect(fs.readdirSync(inst.paths.staging)).toEqual([]);
  });
});
