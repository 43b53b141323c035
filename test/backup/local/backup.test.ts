import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import zlib from "node:zlib";
import { execFileSync } from "node:child_process";
import { Readable, Writable } from "node:stream";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { writeArchive } from "@/lib/backup/format/writer";
import { BlockGzipWriter } from "@/lib/backup/format/pgzip";
import { readArchive } from "@/lib/backup/format/reader";
import { writeStoredBackup } from "@/lib/backup/local/stored";
import { listStoredBackups, openStoredBackup, deleteStoredBackup, currentTarget } from "@/lib/backup/local/repository";
import { resolveBackupDir } from "@/lib/backup/local/directory";
import { acquireLock } from "@/lib/lock";
import { archiveBaseName, compareArchiveNamesNewestFirst, isArchiveName, type Scope } from "@/lib/backup/format/tables";
import { createDocument, deleteDocument } from "@/lib/vault/documents";
import { deleteForever } from "@/lib/vault/trash";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret, decryptSecret } from "@/lib/settings/secrets";
import { blobPath } from "@/lib/vault/blobs";
import { makeSetUpInstance } from "../../support/instance";
import { unpackToMemory } from "../../support/archive";
import { giveWayToRequests, requestsInFlight } from "@/lib/http/edge";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const sha = (b: Buffer | string) => crypto.createHash("sha256").update(b).digest("hex");

/** An instance with users, compressible and incompressible documents, a duplicate, and an encrypted secret. */
async function richInstance() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  const { inst, admin, member } = t;
  const text = Buffer.from("Lorem ipsum dolor sit amet. ".repeat(20000));
  const random = crypto.randomBytes(300_000);
  await createDocument(inst, admin, null, { name: "notes.txt", body: Readable.from([text]), maxBytes: 1e9 });
  await createDocument(inst, member, null, { name: "photo.jpg", body: Readable.from([random]), maxBytes: 1e9 });
  await createDocument(inst, member, null, { name: "notes-copy.txt", body: Readable.from([text]), maxBytes: 1e9 });
  const s = currentSettings(inst.paths.settings);
  saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, notify: { webhook_url: encryptSecret(inst.configKey, "https://hooks.example/secret") } } });
  return { ...t, text, random };
}

async function archiveTo(inst: Parameters<typeof writeArchive>[0], file: string, scope: Scope) {
  return writeArchive(inst, fs.createWriteStream(file), { scope, trigger: "manual" });
}

describe("archive round trip", () => {
  it.each(["full", "db", "vault"] as const)("%s: every member matches the meta and the live data", async (scope) => {
    const { inst, dir, text, random } = await richInstance();
    const file = path.join(dir, `x-${scope}.tar.gz`);
    const written = await archiveTo(inst, file, scope);
    const summary = await readArchive(fs.createReadStream(file));
    expect(summary.meta).toEqual(written.meta);
    expect(summary.meta).toMatchObject({ magic: "coffer-backup", format_version: 1, app_version: "0.1.0", scope, trigger: "manual" });

    const members = await unpackToMemory(file);
    const names = [...members.keys()];
    expect(names[0]).toBe("backup_meta.json");
    expect(JSON.parse(members.get("backup_meta.json")!.toString())).toEqual(written.meta);
    const blobNames = names.filter((n) => n.startsWith("vault/"));
    if (scope === "db") {
      expect(blobNames).toEqual([]);
      expect(written.meta.vault).toEqual({ objects: 0, bytes: 0 });
    } else {
      // Two distinct contents (the duplicate is stored once).
      expect(blobNames.sort()).toEqual([sha(text), sha(random)].map((h) => `vault/${h.slice(0, 2)}/${h}`).sort());
      for (const n of blobNames) expect(sha(members.get(n)!)).toBe(path.basename(n));
      expect(written.meta.vault).toEqual({ objects: 2, bytes: text.length + random.length });
    }
    if (scope === "vault") {
      expect(names.filter((n) => !n.startsWith("vault/"))).toEqual(["backup_meta.json"]);
      return;
    }
    expect(names.slice(0, 5)).toEqual(["backup_meta.json", "coffer.db", "settings.yaml", "keys/secret.key", "keys/config.key"]);
    for (const n of ["coffer.db", "settings.yaml", "keys/secret.key", "keys/config.key"]) {
      expect(written.meta.members[n]).toEqual({ size: members.get(n)!.length, sha256: sha(members.get(n)!) });
    }
    expect(members.get("settings.yaml")).toEqual(fs.readFileSync(inst.paths.settings));
    expect(members.get("keys/secret.key")).toEqual(inst.secretKey);
    expect(members.get("keys/config.key")).toEqual(inst.configKey);
    // The encrypted secret decrypts with the archived key.
    const yaml = members.get("settings.yaml")!.toString();
    const enc = /webhook_url: (enc:v1:\S+)/.exec(yaml)![1];
    expect(decryptSecret(members.get("keys/config.key")!, enc)).toBe("https://hooks.example/secret");
    // The database snapshot: a standalone, intact Coffer database with the live rows.
    const dbFile = path.join(dir, `snap-${scope}.db`);
    fs.writeFileSync(dbFile, members.get("coffer.db")!);
    const snap = new Database(dbFile, { readonly: true });
    expect(snap.pragma("integrity_check", { simple: true })).toBe("ok");
    for (const t of ["users", "documents", "audit_log"]) {
      const live = inst.db.prepare(`SELECT count(*) FROM ${t}`).pluck().get();
      expect(snap.prepare(`SELECT count(*) FROM ${t}`).pluck().get()).toBe(live);
      expect(written.meta.tables[t]).toBe(live);
    }
    snap.close();
  });

  it("stores already-compressed blobs at level 0 and compresses text", async () => {
    const { inst, dir, text, random } = await richInstance();
    const file = path.join(dir, "v.tar.gz");
    const { bytes } = await archiveTo(inst, file, "vault");
    // Text shrinks a lot; random data cannot; the total shows both happened and nothing blew up.
    expect(bytes).toBeLessThan(random.length + text.length / 5);
    expect(bytes).toBeGreaterThan(random.length);
  });
});

describe("consistency under writes", () => {
  it("the snapshot satisfies an invariant the app keeps while it commits during the backup", async () => {
    const { inst, dir } = await richInstance();
    inst.db.exec("CREATE TABLE t_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); CREATE TABLE t_log (id INTEGER PRIMARY KEY, pad BLOB);");
    inst.db.prepare("INSERT INTO t_counter VALUES (1, 0)").run();
    // Enough data that the online backup takes several steps.
    const fill = inst.db.prepare("INSERT INTO t_log (pad) VALUES (randomblob(4000))");
    inst.db.transaction(() => {
      for (let i = 0; i < 15000; i++) fill.run();
    })();
    inst.db.prepare("UPDATE t_counter SET n = (SELECT count(*) FROM t_log)").run();
    const tick = inst.db.transaction(() => {
      inst.db.prepare("INSERT INTO t_log (pad) VALUES (randomblob(100))").run();
      inst.db.prepare("UPDATE t_counter SET n = n + 1").run();
    });
    let running = true;
    let commits = 0;
    const writer = (async () => {
      while (running) {
        tick();
        commits++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    const file = path.join(dir, "c.tar.gz");
    await archiveTo(inst, file, "db");
    running = false;
    await writer;
    expect(commits).toBeGreaterThan(5);
    const members = await unpackToMemory(file);
    const dbFile = path.join(dir, "c.db");
    fs.writeFileSync(dbFile, members.get("coffer.db")!);
    const snap = new Database(dbFile, { readonly: true });
    expect(snap.pragma("integrity_check", { simple: true })).toBe("ok");
    const n = snap.prepare("SELECT n FROM t_counter").pluck().get() as number;
    expect(snap.prepare("SELECT count(*) FROM t_log").pluck().get()).toBe(n);
    expect(n).toBeGreaterThanOrEqual(15000);
    snap.close();
  });

  it("a document deleted during a backup keeps its blob until the backup is done", async () => {
    const { inst, dir, admin, random } = await richInstance();
    // Without continuous protection's window, which would keep the file on purpose (test/continuous.test.ts).
    const s = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, continuous: { ...s.backup.continuous, enabled: false } } });
    const photo = inst.db.prepare("SELECT id FROM documents WHERE name = 'photo.jpg'").pluck().get() as number;
    const file = path.join(dir, "d.tar.gz");
    let deleted = false;
    // A slow sink: delete the only document of a blob while the archive is being written.
    const slow = new Writable({
      write(chunk, _e, cb) {
        if (!deleted) {
          deleted = true;
          deleteDocument(inst, admin, null, photo);
          deleteForever(inst, admin, null, photo);
        }
        fs.appendFileSync(file, chunk);
        setTimeout(cb, 1);
      },
    });
    const written = await writeArchive(inst, slow, { scope: "full", trigger: "manual" });
    expect(deleted).toBe(true);
    expect((await readArchive(fs.createReadStream(file))).meta).toEqual(written.meta);
    expect(fs.existsSync(blobPath(inst.paths, sha(random)))).toBe(false); // released after the backup
  });
});

describe("interoperability", () => {
  it("GNU tar lists and extracts the archive; blobs hash to their names; the database opens", async () => {
    const { inst, dir } = await richInstance();
    const file = path.join(dir, "g.tar.gz");
    await archiveTo(inst, file, "full");
    const listed = execFileSync("tar", ["tzf", file]).toString().trim().split("\n");
    expect(listed.slice(0, 5)).toEqual(["backup_meta.json", "coffer.db", "settings.yaml", "keys/secret.key", "keys/config.key"]);
    const out = path.join(dir, "x");
    fs.mkdirSync(out);
    execFileSync("tar", ["xzf", file, "-C", out]);
    for (const n of listed.filter((l) => l.startsWith("vault/"))) {
      const sum = execFileSync("sha256sum", [path.join(out, n)]).toString().split(" ")[0];
      expect(sum).toBe(path.basename(n));
    }
    const db = new Database(path.join(out, "coffer.db"), { readonly: true });
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    expect(db.prepare("SELECT count(*) FROM documents").pluck().get()).toBe(3);
    db.close();
    expect(execFileSync("gzip", ["-t", file]).toString()).toBe("");
  });
});

describe("stored backups", () => {
  it("lists newest first by name: within one second a later suffix is newer, plain or encrypted (an encrypted archive's time has no milliseconds)", () => {
    const at = new Date("2026-12-06T15:12:40.500Z");
    const names = [
      archiveBaseName("full", new Date("2026-12-06T15:12:39Z")),
      archiveBaseName("full", at),
      archiveBaseName("full", at, 1, true),
      archiveBaseName("db", at, 2),
      archiveBaseName("full", new Date("2026-12-06T15:12:41Z"), 0, true),
    ];
    expect([...names].reverse().sort(compareArchiveNamesNewestFirst)).toEqual([...names].reverse());
    expect([names[1], names[2]].sort(compareArchiveNamesNewestFirst)).toEqual([names[2], names[1]]);
  });

  it("Backup now writes an archive atomically, verifies it, records the run, lists, serves and deletes it", async () => {
    const { inst, admin } = await richInstance();
    const r = await writeStoredBackup(inst, { scope: "full", trigger: "manual", actor: { id: admin.id, name: "admin" } });
    expect(isArchiveName(r.name)).toBe(true);
    expect(r.verified).toBe(true);
    const dir = r.target.location;
    expect(dir).toBe(fs.realpathSync(inst.paths.backups));
    const file = path.join(dir, r.name);
    expect(fs.readdirSync(dir).sort()).toEqual([`.${r.name}.idx`, r.name]); // no .partial left; its seek index beside it
    const run = inst.db.prepare("SELECT * FROM backup_runs WHERE id = ?").get(r.runId) as Record<string, unknown>;
    expect(run).toMatchObject({ status: "success", file: r.name, bytes: fs.statSync(file).size, verified: 1, trigger: "manual" });
    const list = await listStoredBackups(inst);
    expect(list).toEqual([{ name: r.name, size: fs.statSync(file).size, created_at: r.meta.created_at, scope: "full", trigger: "manual", verified: true, encryption: null }]);
    await deleteStoredBackup(inst, { id: admin.id, name: "admin" }, r.name);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(inst.db.prepare("SELECT count(*) FROM audit_log WHERE action = 'backup.delete'").pluck().get()).toBe(1);
  });

  it("only archive names are listed or served; traversal and non-archives are 404", async () => {
    const { inst } = await richInstance();
    const dir = fs.realpathSync(inst.paths.backups);
    fs.writeFileSync(path.join(dir, "notes.txt"), "not a backup");
    fs.writeFileSync(path.join(dir, ".coffer_full_20260101_000000Z.tar.gz.partial"), "half");
    fs.symlinkSync("/etc/passwd", path.join(dir, "coffer_full_20260102_000000Z.tar.gz"));
    expect(await listStoredBackups(inst)).toEqual([]);
    for (const bad of ["../x", "coffer_full_x.tar.gz/../../etc/passwd", "notes.txt", "coffer_full_20260102_000000Z.tar.gz", ".coffer_full_20260101_000000Z.tar.gz.partial", "../coffer.db"]) {
      await expect(openStoredBackup(inst, bad), bad).rejects.toMatchObject({ status: 404 });
    }
    expect(await currentTarget(inst).sweepPartials()).toEqual([".coffer_full_20260101_000000Z.tar.gz.partial"]);
    expect(fs.existsSync(path.join(dir, "notes.txt"))).toBe(true);
  });

  it("names collide into a suffix, never overwrite", () => {
    const at = new Date("2026-11-22T14:30:22.123Z");
    expect(archiveBaseName("full", at)).toBe("coffer_full_20261122_143022Z.tar.gz");
    expect(archiveBaseName("full", at, 2)).toBe("coffer_full_20261122_143022Z_2.tar.gz");
    expect(isArchiveName("coffer_full_20261122_143022Z_2.tar.gz")).toBe(true);
    expect(isArchiveName("coffer_full_20261122_143022Z.tar.gz.partial")).toBe(false);
  });

  it("a second run while another job holds the instance lock waits, then is refused with 409 BUSY naming the holder", async () => {
    const { inst } = await richInstance();
    const lock = await acquireLock(inst.paths.root, "restore");
    const t0 = Date.now();
    const refused = writeStoredBackup(inst, { scope: "db", trigger: "manual" });
    await expect(refused).rejects.toMatchObject({ status: 409, code: "BUSY", message: expect.stringContaining("restore (this server") });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900); // it waited (COFFER_LOCK_WAIT_MS) before giving up
    lock.release();
    await expect(writeStoredBackup(inst, { scope: "db", trigger: "manual" })).resolves.toMatchObject({ verified: true });
  });

  it("the backup directory must be inside the data dir or COFFER_BACKUP_ROOTS", async () => {
    const { inst, dir } = await richInstance();
    expect(resolveBackupDir(inst, "data/backups", {})).toBe(fs.realpathSync(inst.paths.backups));
    expect(() => resolveBackupDir(inst, path.join(dir, "elsewhere"), {})).toThrow(expect.objectContaining({ code: "BACKUP_DIR_NOT_ALLOWED" }));
    expect(resolveBackupDir(inst, path.join(dir, "elsewhere"), { COFFER_BACKUP_ROOTS: dir })).toBe(fs.realpathSync(path.join(dir, "elsewhere")));
    // A symlink inside the data dir that points out is judged by where it points.
    fs.symlinkSync(path.join(dir, "elsewhere"), path.join(inst.paths.root, "sneaky"));
    expect(() => resolveBackupDir(inst, "data/sneaky", {})).toThrow(expect.objectContaining({ code: "BACKUP_DIR_NOT_ALLOWED" }));
    // Refused before anything is created.
    expect(() => resolveBackupDir(inst, path.join(dir, "never-made"), {})).toThrow(expect.objectContaining({ code: "BACKUP_DIR_NOT_ALLOWED" }));
    expect(fs.existsSync(path.join(dir, "never-made"))).toBe(false);
    // Coffer's own directories are never backup directories.
    for (const own of ["data/keys", "data/vault/ab", "data/.staging", "data/.tmp", "data/lost+found"]) {
      expect(() => resolveBackupDir(inst, own, {}), own).toThrow(expect.objectContaining({ code: "BACKUP_DIR_NOT_ALLOWED" }));
    }
  });
});

describe("a backup gives way to requests", () => {
  /** A request as the server entry records it, arrived at `startedAt`. */
  const arrived = (startedAt: number) => ({ gone: new AbortController(), startedAt });

  it("waits while a young request is answered, at most 100 ms at a time; old requests and none do not hold it", async () => {
    const starts = requestsInFlight();
    const timed = async () => {
      const t0 = performance.now();
      await giveWayToRequests();
      return performance.now() - t0;
    };
    try {
      expect(await timed()).toBeLessThan(20);
      starts.set("download", arrived(performance.now() - 5_000)); // a long request: a download, Back up now itself
      expect(await timed()).toBeLessThan(20);
      starts.set("upload", arrived(performance.now()));
      const capped = await timed();
      expect(capped).toBeGreaterThanOrEqual(95);
      expect(capped).toBeLessThan(300);
      starts.set("upload", arrived(performance.now()));
      setTimeout(() => starts.delete("upload"), 40);
      const answered = await timed();
      expect(answered).toBeGreaterThanOrEqual(35);
      expect(answered).toBeLessThan(95);
    } finally {
      starts.clear();
    }
  });

  it("writing and reading back an archive pause for requests between blocks", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    await createDocument(t.inst, t.admin, null, { name: "big.bin", body: Readable.from([crypto.randomBytes(4 * 1024 * 1024)]), maxBytes: 1e9 });
    const backUp = async () => {
      const t0 = performance.now();
      await writeStoredBackup(t.inst, { scope: "full", trigger: "manual" });
      return performance.now() - t0;
    };
    // A request that stays young for the whole backup: every pause runs to its cap.
    // Its age is read each time the backup looks whether to wait, so the reads count the looks.
    let looks = 0;
    const young = { gone: new AbortController(), get startedAt() { looks++; return performance.now() + 3_600_000; } };
    requestsInFlight().set("always", young);
    try {
      const busy = await backUp();
      // 4 blocks written and 4 MiB read back: at least 8 pauses, each held to its 100 ms cap.
      // (A time difference against a free run flaked on a loaded machine; a lower bound on the busy run cannot.)
      expect(looks).toBeGreaterThanOrEqual(8);
      expect(busy).toBeGreaterThanOrEqual(800);
    } finally {
      requestsInFlight().clear();
    }
  });
});

describe("block gzip writer", () => {
  it("hands the destination chunks of its own: a destination that keeps every chunk still holds a valid gzip of the input", async () => {
    // Blocks and each lane's output live in memory shared with the workers and
    // are reused; a chunk that were a view of that memory would be overwritten
    // by later blocks while a destination (a download's queue) still holds it.
    const input = Buffer.concat(Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? crypto.randomBytes(50_000) : Buffer.alloc(50_000, `block ${i} `))));
    const kept: Buffer[] = [];
    const keeper = new Writable({
      write(chunk: Buffer, _e, cb) {
        kept.push(chunk);
        cb();
      },
    });
    const gz = new BlockGzipWriter(keeper, { blockSize: 64 * 1024, concurrency: 2 });
    try {
      await gz.start();
      for (let off = 0; off < input.length; off += 100_000) await gz.write(input.subarray(off, off + 100_000));
      await gz.finish();
    } finally {
      gz.close();
    }
    expect(kept.some((c) => c.buffer instanceof SharedArrayBuffer)).toBe(false);
    expect(zlib.gunzipSync(Buffer.concat(kept)).equals(input)).toBe(true);
  });
});
