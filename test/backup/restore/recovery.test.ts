import fs from "node:fs";
import path from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { Readable } from "node:stream";
import Database from "better-sqlite3";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeArchive } from "@/lib/backup/format/writer";
import { stageArchive } from "@/lib/backup/restore/staging";
import { applyRestore, type RestoreHost } from "@/lib/backup/restore/apply";
import { recoverRestore, RecoveryError } from "@/lib/backup/restore/recovery";
import { JOURNAL_NAME } from "@/lib/backup/restore/journal";
import { openInstance, closeInstance, type Instance } from "@/lib/instance";
import { createDocument } from "@/lib/vault/documents";
import { tryLock } from "@/lib/lock";
import { makeSetUpInstance, tempDir } from "../../support/instance";
import { unpackToMemory } from "../../support/archive";
import { tarOf, gz, replaceMember, type Entry } from "../../support/hostile";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/** The real command, as an operator runs it, optionally killed at a crash point. */
function coffer(dataDir: string, args: string[], crashAt?: string) {
  const env = { ...process.env, COFFER_DATA_DIR: "", COFFER_TEST_CRASH_AT: crashAt ?? "" };
  const r = spawnSync(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), "--data-dir", dataDir, ...args], { encoding: "utf8", env });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

let GOOD: Buffer; // a full archive of an instance holding restored.txt
let BAD_FK: Buffer; // the same, with a document whose owner does not exist: passes staging, fails the quick checks

beforeAll(async () => {
  const t = await makeSetUpInstance();
  await createDocument(t.inst, t.admin, null, { name: "restored.txt", body: Readable.from([Buffer.from("from the backup")]), maxBytes: 1e6 });
  const file = path.join(t.dir, "good.tar.gz");
  await writeArchive(t.inst, fs.createWriteStream(file), { scope: "full", trigger: "manual" });
  const entries: Entry[] = [...(await unpackToMemory(file))].map(([name, data]) => ({ name, data }));
  GOOD = gz(tarOf(entries));
  const dbFile = path.join(t.dir, "fk.db");
  fs.writeFileSync(dbFile, entries.find((e) => e.name === "coffer.db")!.data!);
  const db = new Database(dbFile);
  db.pragma("foreign_keys = OFF");
  db.prepare("INSERT INTO documents (owner_id, name, content_type, size, sha256, created_at) SELECT 999, 'orphan.txt', content_type, size, sha256, created_at FROM documents LIMIT 1").run();
  db.close();
  BAD_FK = gz(tarOf(replaceMember(entries, "coffer.db", fs.readFileSync(dbFile))));
  t.cleanup();
});

/** A set-up live instance holding live.txt, closed so another process can use its data dir. */
async function liveInstance(): Promise<{ root: string; dir: string }> {
  const t = await makeSetUpInstance();
  await createDocument(t.inst, t.admin, null, { name: "live.txt", body: Readable.from([Buffer.from("only on the live instance")]), maxBytes: 1e6 });
  closeInstance(t.inst);
  cleanups.push(() => fs.rmSync(t.dir, { recursive: true, force: true }));
  return { root: t.inst.paths.root, dir: t.dir };
}

/** What must come back whole: documents, accounts, settings, keys, blobs. */
function state(root: string): string {
  const inst = openInstance(root);
  try {
    const docs = inst.db.prepare("SELECT name, sha256 FROM documents ORDER BY name").all();
    const users = inst.db.prepare("SELECT username, password_hash FROM users ORDER BY username").all();
    const files = ["settings.yaml", "keys/secret.key", "keys/config.key"].map((f) => fs.readFileSync(path.join(root, f)).toString("hex"));
    const blobs = fs.readdirSync(inst.paths.vault, { recursive: true }).map(String).sort();
    return JSON.stringify({ docs, users, files, blobs });
  } finally {
    closeInstance(inst);
  }
}

const docNames = (root: string) => (JSON.parse(state(root)).docs as { name: string }[]).map((d) => d.name);

describe("restore recovery", () => {
  it("a restored instance that fails its quick checks gives RESTORE_CHECK_FAILED and the old instance whole, served again", async () => {
    const { root } = await liveInstance();
    const before = state(root);
    const inst = openInstance(root);
    const preview = await stageArchive(inst, Readable.from([BAD_FK]));
    const calls: string[] = [];
    let served: Instance | null = null;
    const host: RestoreHost = { enterMaintenance: () => void calls.push("enter"), leaveMaintenance: (s) => (calls.push("leave"), (served = s)) };
    await expect(applyRestore(inst, preview.id, { id: null, name: "test" }, host)).rejects.toMatchObject({ status: 422, code: "RESTORE_CHECK_FAILED", message: expect.stringContaining("foreign") });
    expect(calls).toEqual(["enter", "leave"]);
    expect(served).not.toBeNull();
    expect(served!.db.open).toBe(true); // the old instance, reopened, is what the web app serves
    closeInstance(served!);
    expect(fs.existsSync(path.join(root, JOURNAL_NAME))).toBe(false);
    expect(state(root)).toBe(before);
  });

  it("SIGKILL during the recovery's roll-forward: the next start finishes it, and the instance is wholly the restored one", async () => {
    const { root, dir } = await liveInstance();
    const archive = path.join(dir, "good.tar.gz");
    fs.writeFileSync(archive, GOOD);
    expect(coffer(root, ["restore", archive, "--yes"], "after-journal").signal).toBe("SIGKILL");
    expect(fs.existsSync(path.join(root, JOURNAL_NAME))).toBe(true);
    // The recovery itself is killed half-way through its renames.
    expect(coffer(root, ["list"], "swap:settings.yaml").signal).toBe("SIGKILL");
    expect(fs.existsSync(path.join(root, JOURNAL_NAME))).toBe(true);
    const r = coffer(root, ["list"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("finished a restore that was interrupted");
    expect(fs.existsSync(path.join(root, JOURNAL_NAME))).toBe(false);
    expect(docNames(root)).toEqual(["restored.txt"]);
    const doctor = coffer(root, ["--json", "doctor", "--deep"]);
    expect(doctor.code, doctor.stdout).toBe(0);
  });

  it("SIGKILL during a roll-back: the next start finishes going back, and the instance is wholly the old one", async () => {
    const { root, dir } = await liveInstance();
    const before = state(root);
    const archive = path.join(dir, "bad.tar.gz");
    fs.writeFileSync(archive, BAD_FK);
    expect(coffer(root, ["restore", archive, "--yes"], "after-journal").signal).toBe("SIGKILL");
    // Recovery rolls forward, the checks fail, and it is killed while putting the old files back.
    expect(coffer(root, ["list"], "rollback:keys").signal).toBe("SIGKILL");
    const r = coffer(root, ["list"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("undid a restore that was interrupted");
    expect(state(root)).toBe(before);
    expect(docNames(root)).toEqual(["live.txt"]);
    // The old instance was never audited as restored.
    const inst = openInstance(root);
    expect(inst.db.prepare("SELECT count(*) FROM audit_log WHERE action = 'restore.apply'").pluck().get()).toBe(0);
    closeInstance(inst);
  });

  it("says nothing happened when nothing did, and leaves a restore in progress alone", async () => {
    const { root } = await liveInstance();
    expect(recoverRestore(root)).toBe("none");
    fs.writeFileSync(path.join(root, JOURNAL_NAME), "{ torn");
    expect(() => recoverRestore(root)).toThrow(RecoveryError);
    expect(fs.existsSync(path.join(root, JOURNAL_NAME))).toBe(true); // kept for the operator
    // A journal that points outside the staging area is damage, not a plan: nothing is touched.
    fs.writeFileSync(path.join(root, JOURNAL_NAME), JSON.stringify({ id: "../../..", phase: "swapping", items: ["coffer.db"] }));
    expect(() => recoverRestore(root)).toThrow(/names no valid staged restore/);
    fs.writeFileSync(path.join(root, JOURNAL_NAME), JSON.stringify({ id: "0".repeat(32), phase: "swapping", items: ["../../etc"] }));
    expect(() => recoverRestore(root)).toThrow(/files a restore never replaces/);
    // A journal whose staged files are gone, before anything moved: rolled back (there was nothing to move).
    const before = state(root);
    fs.writeFileSync(path.join(root, JOURNAL_NAME), JSON.stringify({ id: "0".repeat(32), phase: "swapping", items: ["coffer.db", "settings.yaml"] }));
    const restoring = tryLock(root, "restore")!;
    expect(() => recoverRestore(root)).toThrow(/a restore is being applied right now/);
    restoring.release();
    expect(recoverRestore(root)).toBe("back");
    expect(state(root)).toBe(before);
  });

  it("a server start-up with an unreadable journal stops with one line saying what to do", async () => {
    const { root } = await liveInstance();
    fs.writeFileSync(path.join(root, JOURNAL_NAME), "{ torn");
    const r = coffer(root, ["list"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("delete the journal");
  });
});

describe("the instance lock across processes", () => {
  it("a coffer backup started from cron during a restore is kept out, naming the holder", async () => {
    const { root } = await liveInstance();
    const restoring = tryLock(root, "restore")!;
    const r = coffer(root, ["backup"]);
    restoring.release();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Another job is running: restore \(process \d+/);
    expect(r.stderr).toContain("(BUSY)");
    expect(coffer(root, ["backup"]).code).toBe(0);
  });

  it("a holder killed with SIGKILL does not keep the lock", async () => {
    const { root } = await liveInstance();
    const child = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(path.join(ROOT, "dist", "lib", "lock.js"))}).tryLock(${JSON.stringify(root)}, "backup (cli)"); process.kill(process.pid, "SIGKILL")`]);
    expect(child.signal).toBe("SIGKILL");
    expect(fs.existsSync(path.join(root, "coffer.lock"))).toBe(true);
    const lock = tryLock(root, "backup (manual)");
    expect(lock).not.toBeNull();
    lock!.release();
  });

  it("a lock file whose pid was recycled by another process is stale", () => {
    const root = tempDir();
    cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
    const mine = tryLock(root, "backup")!;
    expect(tryLock(root, "other")).toBeNull(); // our own live holder: busy
    mine.release();
    // Same pid as ours, but another process start time: a previous incarnation (pid 1 in a container).
    const stale = { ...mine.holder, start: "1", token: "old" };
    fs.writeFileSync(path.join(root, "coffer.lock"), JSON.stringify(stale));
    const taken = tryLock(root, "backup");
    expect(taken).not.toBeNull();
    taken!.release();
    // Another host on a shared disk: we cannot tell, so it counts as held.
    fs.writeFileSync(path.join(root, "coffer.lock"), JSON.stringify({ ...stale, host: "elsewhere" }));
    expect(tryLock(root, "backup")).toBeNull();
  });
});

describe("a CLI backup under steady writes from another process", () => {
  it("finishes and verifies while the server commits every 10 ms (SQLite would restart a stepwise backup on each write)", async () => {
    const { root } = await liveInstance();
    const inst = openInstance(root);
    const filler = inst.db.prepare("INSERT INTO audit_log (at, actor, action, detail) VALUES (?, 'filler', 'test.fill', ?)");
    inst.db.transaction(() => {
      for (let i = 0; i < 40_000; i++) filler.run(new Date().toISOString(), "x".repeat(1000)); // about 45 MiB
    })();
    closeInstance(inst);
    const writer = spawn(process.execPath, [
      "-e",
      `const D = require(${JSON.stringify(path.join(ROOT, "node_modules", "better-sqlite3"))});
       const db = new D(${JSON.stringify(path.join(root, "coffer.db"))}); db.pragma("busy_timeout = 5000");
       const ins = db.prepare("INSERT INTO audit_log (at, actor, action) VALUES (?, 'writer', 'test.write')");
       let n = 0; setInterval(() => { ins.run(new Date().toISOString()); if (++n % 50 === 0) process.stdout.write("."); }, 10);`,
    ]);
    cleanups.push(() => writer.kill("SIGKILL"));
    await new Promise((r) => writer.stdout.once("data", r)); // writing has begun
    const started = Date.now();
    const r = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
      const p = spawn(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), "--data-dir", root, "--json", "backup", "--scope", "db"], { env: { ...process.env, COFFER_DATA_DIR: "" } });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d) => (stdout += d));
      p.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
      p.on("exit", (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ verified: true });
    expect(writer.exitCode).toBeNull(); // the writer was still writing throughout
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);
});
