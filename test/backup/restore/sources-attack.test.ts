// Outside review of restoring single documents from an offsite snapshot and from a point in time.
// Each case asserts the secure behaviour: a case that fails shows a real problem.
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createDocument, deleteDocument } from "@/lib/vault/documents";
import { emptyTrash } from "@/lib/vault/trash";
import { blobPath } from "@/lib/vault/blobs";
import { snapshotDatabase } from "@/lib/backup/format/db-snapshot";
import { closeRepository, openRepository, readIndex, type OffsiteRepo } from "@/lib/backup/offsite/repository";
import { pushOffsite } from "@/lib/backup/offsite/push";
import { offsiteSource } from "@/lib/backup/offsite/pull";
import { browseBackup, clearBrowseCache, type BackupSource } from "@/lib/backup/restore/browse";
import { restoreDocuments } from "@/lib/backup/restore/documents";
import { parsePointInTime, pointInTimeSource } from "@/lib/continuous/pitr";
import { continuousPlan } from "@/lib/continuous/litestream";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { readArchive } from "@/lib/backup/format/reader";
import { writeTarGz, type VaultFile } from "@/lib/backup/format/writer";
import { INSTANCE_MEMBERS, type BackupMeta } from "@/lib/backup/format/tables";
import { writeNewFileUnder } from "@/lib/backup/restore/payload";
import { tryLock } from "@/lib/lock";
import { AppError } from "@/lib/errors";
import { makeSetUpInstance } from "../../support/instance";
import { until } from "../../support/until";
import { configureOffsite, startS3, type TestS3 } from "../../support/s3";

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

function setEnv(name: string, value: string) {
  const old = process.env[name];
  process.env[name] = value;
  cleanups.push(() => {
    if (old === undefined) delete process.env[name];
    else process.env[name] = old;
  });
}

function duBytes(dir: string): number {
  let sum = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sum += duBytes(p);
    else if (e.isFile()) sum += fs.statSync(p).size;
  }
  return sum;
}

const settle = <T>(p: Promise<T>) => p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }));
/** What a route would answer: a specific 4xx AppError is fine, anything else is a 500. */
const httpOf = (r: { ok: true } | { ok: false; e: unknown }) =>
  r.ok ? "ok" : r.e instanceof AppError ? (r.e.status < 500 ? "4xx" : `${r.e.status} ${r.e.code}: ${r.e.message}`) : `500 (raw ${(r.e as Error)?.message})`;

/** An instance with documents pushed offsite (unencrypted), at `times` (one snapshot each), then contract erased. */
async function offsiteInstance(times: string[] = ["2026-12-01T03:00:00Z"]) {
  const t = await makeSetUpInstance();
  cleanups.push(() => {
    clearBrowseCache(t.inst);
    t.cleanup();
  });
  const contract = await createDocument(t.inst, t.admin, null, { name: "contract.pdf", body: body("contract as it was in March"), maxBytes: 1e6 });
  const notes = await createDocument(t.inst, t.member, null, { name: "notes.txt", body: body("mia's notes"), maxBytes: 1e6 });
  const loc = await s3.location("docs");
  configureOffsite(t.inst, loc);
  const s = currentSettings(t.inst.paths.settings);
  saveSettings(t.inst.paths.settings, { ...s, backup: { ...s.backup, continuous: { ...s.backup.continuous, enabled: false } } });
  const repo = openRepository(loc);
  cleanups.push(() => closeRepository(repo));
  const snapshots: string[] = [];
  for (const at of times) {
    const work = fs.mkdtempSync(path.join(t.inst.paths.tmp, "t-"));
    const pushed = await pushOffsite(t.inst, repo, { scope: "full", trigger: "manual", dbSnapshot: await snapshotDatabase(t.inst, work), now: new Date(at) });
    fs.rmSync(work, { recursive: true, force: true });
    snapshots.push(pushed.snapshot);
  }
  deleteDocument(t.inst, t.admin, null, contract.id);
  emptyTrash(t.inst, t.admin, null);
  expect(fs.existsSync(blobPath(t.inst.paths, contract.sha256))).toBe(false);
  return { ...t, repo, loc, snapshots, contract, notes };
}

/**
 * What someone with write access to the bucket can do: rewrite a snapshot archive (and its index so it
 * stays "complete") with another meta and extra vault members; every member is internally consistent.
 */
async function rewriteSnapshot(repo: OffsiteRepo, name: string, tmp: string, edit: (meta: BackupMeta, dir: string) => { meta: BackupMeta; vault: VaultFile[] }) {
  const dir = fs.mkdtempSync(path.join(tmp, "craft-"));
  const summary = await readArchive(await repo.snapshots.open(name), { onMember: (m, c) => writeNewFileUnder(dir, m, c) });
  const { meta, vault } = edit(summary.meta, dir);
  const members = INSTANCE_MEMBERS.map((m) => ({ name: m, size: meta.members[m].size, file: path.join(dir, ...m.split("/")) }));
  const out = path.join(tmp, `crafted-${crypto.randomBytes(4).toString("hex")}.tar.gz`);
  const ws = fs.createWriteStream(out);
  const closed = new Promise<void>((r) => ws.on("close", () => r()));
  async function* gen() {
    for (const v of vault) yield v;
  }
  await writeTarGz(ws, meta, members, gen(), {});
  await closed;
  const bytes = fs.statSync(out).size;
  await repo.snapshots.putStream(name, fs.createReadStream(out), bytes);
  const idx = (await readIndex(repo, name))!;
  const sha = crypto.createHash("sha256").update(fs.readFileSync(out)).digest("hex");
  await repo.indexes.putSmall(`${name}.json`, Buffer.from(JSON.stringify({ ...idx, snapshot_bytes: bytes, snapshot_sha256: sha })));
  fs.rmSync(out, { force: true });
}

describe("offsite snapshot: what a bucket writer can make the server do", () => {
  it("[F1] browsing (any member may) never unpacks more into staging than the staging cap: extra vault members in a snapshot archive are not written", async () => {
    const t = await offsiteInstance();
    const cap = 4 * 1024 * 1024;
    setEnv("COFFER_RESTORE_MAX_BYTES", String(cap));
    // 40 MiB of zeros as a valid blob member: ~40 KiB compressed in the bucket.
    const zeros = path.join(t.inst.paths.tmp, "zeros.bin");
    const big = 40 * 1024 * 1024;
    fs.writeFileSync(zeros, Buffer.alloc(big));
    const sha = crypto.createHash("sha256").update(fs.readFileSync(zeros)).digest("hex");
    await rewriteSnapshot(t.repo, t.snapshots[0], t.inst.paths.tmp, (meta) => ({
      meta: { ...meta, scope: "full", vault: { objects: 1, bytes: big } },
      vault: [{ sha256: sha, file: zeros, size: big }],
    }));
    fs.rmSync(zeros);
    expect((await t.repo.snapshots.stat(t.snapshots[0]))!.size).toBeLessThan(2 * 1024 * 1024);

    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, duBytes(t.inst.paths.staging))), 20);
    const r = await settle(browseBackup(t.inst, t.member, offsiteSource(t.repo, t.snapshots[0])));
    clearInterval(timer);
    peak = Math.max(peak, duBytes(t.inst.paths.staging));
    // Secure: refused (4xx) or nothing past the database, settings and keys written; never more than the cap.
    expect({ http: httpOf(r), stagingPeakMiB: Math.round(peak / 2 ** 20) }).toMatchObject({ stagingPeakMiB: expect.toSatisfy((n: number) => n <= cap / 2 ** 20) });
  }, 60_000);

  it("[F2] a restore waiting for the instance lock keeps its held database: three browses of other snapshots (a member's) do not delete it from under it", async () => {
    const t = await offsiteInstance(["2026-12-01T03:00:00Z", "2026-12-01T04:00:00Z", "2026-12-01T05:00:00Z", "2026-12-01T06:00:00Z"]);
    const [first, ...others] = t.snapshots;
    const lock = tryLock(t.inst.paths.root, "another restore, still running")!;
    expect(lock).toBeTruthy();
    let released = false;
    cleanups.push(() => released || lock.release());
    const restoring = settle(restoreDocuments(t.inst, t.admin, null, offsiteSource(t.repo, first), { ids: [t.contract.id] }));
    // The admin's restore has its database (one browse dir) and waits for the lock.
    await until("the restore to hold its database", () => fs.readdirSync(t.inst.paths.staging).some((n) => fs.existsSync(path.join(t.inst.paths.staging, n, "payload", "coffer.db"))));
    for (const name of others) await browseBackup(t.inst, t.member, offsiteSource(t.repo, name));
    lock.release();
    released = true;
    const r = await restoring;
    expect(httpOf(r)).toMatch(/^(ok|4xx)$/);
  }, 60_000);

  it("[F3] three members browsing the same snapshot at once read it from the bucket once (one staging copy, no orphans)", async () => {
    const t = await offsiteInstance();
    let unpacks = 0;
    const counted = (s: BackupSource): BackupSource => ({
      name: s.name,
      kind: s.kind,
      version: () => s.version(),
      fetchFiles: (...a) => s.fetchFiles(...a),
      unpackDatabase: (...a) => {
        unpacks++;
        return s.unpackDatabase(...a);
      },
    });
    const rs = await Promise.all([0, 1, 2].map(() => settle(browseBackup(t.inst, t.member, counted(offsiteSource(t.repo, t.snapshots[0]))))));
    expect(rs.map(httpOf)).toEqual(["ok", "ok", "ok"]);
    expect({ unpacks, stagingDirs: fs.readdirSync(t.inst.paths.staging).length }).toEqual({ unpacks: 1, stagingDirs: 1 });
  }, 60_000);

  it("[F6] a member asking for a snapshot the bucket lacks is told 404 without the bucket's address", async () => {
    const t = await offsiteInstance();
    const r = await settle(browseBackup(t.inst, t.member, offsiteSource(t.repo, "coffer_full_20200101_000000Z.tar.gz")));
    expect(httpOf(r)).toBe("4xx");
    expect((r as { e: Error }).e.message).not.toContain(t.loc.bucket);
  }, 60_000);

  it("[held] odd snapshot names are 404s, never paths", async () => {
    const t = await offsiteInstance();
    for (const n of ["../indexes/x.json", "coffer_full_20261201_030000Z.tar.gz/../../x", "a".repeat(5000), "coffer_full_20261201_030000Z.tar.gz\0"]) {
      expect(() => offsiteSource(t.repo, n)).toThrow(expect.objectContaining({ status: 404 }));
    }
  });
});

/** A fake Litestream (COFFER_LITESTREAM) that logs its arguments, takes `delay` seconds, and writes a Coffer database to -o. */
async function pitrInstance(delay = 1) {
  const t = await makeSetUpInstance();
  cleanups.push(() => {
    clearBrowseCache(t.inst);
    t.cleanup();
  });
  await createDocument(t.inst, t.member, null, { name: "b.pdf", body: body("content of b"), maxBytes: 1e6 });
  const work = fs.mkdtempSync(path.join(path.dirname(t.inst.paths.root), "fake-ls-"));
  cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
  const db = (await snapshotDatabase(t.inst, work), path.join(work, "coffer.db"));
  const log = path.join(work, "calls.log");
  const script = path.join(work, "litestream");
  // As Litestream does: the output's directory made and its .tmp opened at the start, written over time, renamed at the end.
  fs.writeFileSync(
    script,
    `#!/bin/sh\necho "$*" >> ${JSON.stringify(log)}\nmkdir -p "$(dirname "$3")" || exit 1\nexec 3> "$3.tmp" || exit 1\nsleep ${delay}\ncat ${JSON.stringify(db)} >&3 && mv "$3.tmp" "$3"\n`,
    { mode: 0o755 },
  );
  setEnv("COFFER_LITESTREAM", script);
  // A replica that covers the last hour, in 0.3.13's layout.
  const gen = path.join(continuousPlan(t.inst).replica, "generations", "0123456789abcdef");
  fs.mkdirSync(path.join(gen, "snapshots"), { recursive: true });
  fs.mkdirSync(path.join(gen, "wal"), { recursive: true });
  const snap = path.join(gen, "snapshots", "00000000.snapshot.lz4");
  const wal = path.join(gen, "wal", "00000000_00000000.wal.lz4");
  fs.writeFileSync(snap, "x");
  fs.writeFileSync(wal, "x");
  const now = Date.now();
  fs.utimesSync(snap, new Date(now - 3600_000), new Date(now - 3600_000));
  fs.utimesSync(wal, new Date(now), new Date(now));
  const calls = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []);
  const at = new Date(Math.floor(now / 1000) * 1000 - 600_000);
  return { ...t, calls, at };
}

describe("point in time: what a member can make the server do", () => {
  it("[F4] three concurrent browses of the same second by a member spawn Litestream once", async () => {
    const t = await pitrInstance(1);
    const rs = await Promise.all([0, 1, 2].map(() => settle(browseBackup(t.inst, t.member, pointInTimeSource(t.inst, t.at)))));
    expect(rs.map(httpOf)).toEqual(["ok", "ok", "ok"]);
    expect(t.calls()).toHaveLength(1);
  }, 30_000);

  it("[F4b] the same second in other fractions is the same rebuild, not one Litestream run per millisecond", async () => {
    const t = await pitrInstance(0);
    const s = t.at.toISOString().slice(0, 19);
    for (const spelling of [`${s}Z`, `${s}.001Z`, `${s}.002Z`, `${s}.999999999Z`]) {
      await browseBackup(t.inst, t.member, pointInTimeSource(t.inst, parsePointInTime(spelling)));
    }
    expect(t.calls()).toHaveLength(1);
  }, 30_000);

  it("[F5] a fourth member's browse while three Litestream rebuilds run does not delete one of them mid-write (a 500 for that caller)", async () => {
    const t = await pitrInstance(1);
    const browse = (i: number) => settle(browseBackup(t.inst, t.member, pointInTimeSource(t.inst, new Date(t.at.getTime() - i * 1000))));
    const first = [0, 1, 2].map(browse);
    await until("three rebuilds running", () => t.calls().length >= 3, 5000);
    const rs = await Promise.all([...first, browse(3)]);
    expect(rs.map(httpOf).filter((h) => h !== "ok" && h !== "4xx")).toEqual([]);
  }, 30_000);

  it("[F7] a caller that leaves stops Litestream and is told CLIENT_GONE (a 4xx), not a 500", async () => {
    const t = await pitrInstance(3);
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 300);
    const r = await settle(browseBackup(t.inst, t.member, pointInTimeSource(t.inst, t.at), { signal: ctl.signal }));
    expect(httpOf(r)).toBe("4xx");
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]);
  }, 30_000);

  it("[F7b] the first caller leaving a shared rebuild does not stop it for the others; when the last leaves it stops", async () => {
    const t = await pitrInstance(2);
    const first = new AbortController();
    const a = settle(browseBackup(t.inst, t.member, pointInTimeSource(t.inst, t.at), { signal: first.signal }));
    const b = settle(browseBackup(t.inst, t.member, pointInTimeSource(t.inst, t.at), { signal: new AbortController().signal }));
    await until("Litestream running", () => t.calls().length === 1, 5000);
    first.abort();
    expect(httpOf(await a)).toBe("4xx");
    expect(httpOf(await b)).toBe("ok");
    expect(t.calls()).toHaveLength(1);

    clearBrowseCache(t.inst);
    const both = [new AbortController(), new AbortController()];
    const rs = both.map((c) => settle(browseBackup(t.inst, t.member, pointInTimeSource(t.inst, t.at), { signal: c.signal })));
    await until("Litestream running again", () => t.calls().length === 2, 5000);
    for (const c of both) c.abort();
    expect((await Promise.all(rs)).map(httpOf)).toEqual(["4xx", "4xx"]);
    await until("the rebuild stopped and its staging gone", () => fs.readdirSync(t.inst.paths.staging).length === 0, 5000);
  }, 30_000);

  it("[F8] a Litestream that fails tells a member that it failed and when, not the paths it named; the server's log keeps its words", async () => {
    const t = await pitrInstance(0);
    fs.writeFileSync(process.env.COFFER_LITESTREAM!, `#!/bin/sh\necho "open /srv/coffer/secret-replica/generations/x: permission denied" >&2\nexit 1\n`, { mode: 0o755 });
    const logged: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: string) => void logged.push(String(line)));
    try {
      const r = await settle(browseBackup(t.inst, t.member, pointInTimeSource(t.inst, t.at)));
      expect(r).toMatchObject({ ok: false, e: { code: "CONTINUOUS_RESTORE_FAILED", message: expect.stringMatching(/could not rebuild the database at \S+Z \(exit code 1\)\. The server's log/) } });
      expect((r as { e: Error }).e.message).not.toMatch(/secret-replica|\//);
      expect(logged.join("\n")).toMatch(/litestream restore at \S+ failed \(exit code 1\): open \/srv\/coffer\/secret-replica/);
    } finally {
      spy.mockRestore();
    }
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]);
  }, 30_000);

  it("[held] Litestream gets only a canonical timestamp; odd spellings and times outside the window are 4xx before any spawn", async () => {
    const t = await pitrInstance(0);
    for (const bad of ["2026-12-06T10:41:00Z -config /etc/passwd", "2026-12-06 10:41:00Z", "1733480460", "2026-12-06T10:41:00", "2026-12-06T25:00:00Z", "2026-13-06T10:41:00Z", "2026-12-06T10:41:00+99:99", "", "x".repeat(10_000)]) {
      expect(() => parsePointInTime(bad), bad).toThrow(expect.objectContaining({ status: 400 }));
    }
    expect(() => pointInTimeSource(t.inst, parsePointInTime("2020-01-01T00:00:00Z"))).toThrow(expect.objectContaining({ status: 422, code: "OUTSIDE_WINDOW" }));
    expect(() => pointInTimeSource(t.inst, new Date(Date.now() + 3600_000))).toThrow(expect.objectContaining({ status: 422 }));
    const off = t.at.toISOString().slice(0, 19) + "+00:00";
    await browseBackup(t.inst, t.member, pointInTimeSource(t.inst, parsePointInTime(off)));
    expect(t.calls()).toHaveLength(1);
    expect(t.calls()[0]).toMatch(/^restore -o \S+\/payload\/coffer\.db -timestamp \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ file:\/\/\S+$/);
  }, 30_000);
});
