import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import { spawn } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { documentContents, makeInstance, makeSetUpInstance, restoreIntoFresh } from "../support/instance";
import { configureOffsite, startS3, type TestS3 } from "../support/s3";
import { startFaultProxy } from "../support/fault-proxy";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { createDocument } from "@/lib/vault/documents";
import { generateKey, parseIdentities, type AgeKeys } from "@/lib/crypto/age";
import { closeInstance, openInstance, type Instance } from "@/lib/instance";
import { continuousPlan, litestreamBinary } from "@/lib/continuous/litestream";
import { ContinuousSupervisor } from "@/lib/continuous/supervisor";
import { continuousBlobObjects, continuousTarget, localReplicaFiles } from "@/lib/continuous/offsite";
import { pruneOffsite } from "@/lib/backup/offsite/prune";
import { deleteDocument } from "@/lib/vault/documents";
import { deleteForever } from "@/lib/vault/trash";
import { readOffsiteState } from "@/lib/continuous/offsite-state";
import { listContinuousObjects, offsiteWindow, parseContinuousObject, planOffsiteRestore, stageOffsitePointInTime } from "@/lib/continuous/offsite-restore";
import { continuousStatus } from "@/lib/continuous/status";
import { healthReport } from "@/lib/health";
import { closeRepository, openRepository, type OffsiteRepo } from "@/lib/backup/offsite/repository";
import type { S3Location } from "@/lib/backup/offsite/location";

/**
 * Continuous protection offsite: the real Litestream 0.3.13 writes the local
 * replica, Coffer ships it and the vault files to a real S3-protocol server
 * (s3rver) within seconds, and a fresh instance restores from the bucket to a
 * second of the window.
 */
const binary = litestreamBinary();
if (!binary) console.warn("continuous/offsite.test.ts: SKIPPED: no Litestream binary");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Buffer | string) => crypto.createHash("sha256").update(b).digest("hex");
const wholeSecond = () => new Date(Math.floor(Date.now() / 1000) * 1000);

async function until<T>(what: string, probe: () => T | null | undefined | false | Promise<T | null | undefined | false>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const ROOT = path.resolve(__dirname, "..", "..");

/** The real command (dist/, compiled by the global setup), run asynchronously. */
function coffer(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, "bin", "coffer.cjs"), ...args], { env: { ...process.env, COFFER_DATA_DIR: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
  process.env.COFFER_CONTINUOUS_OFFSITE_MS = "300";
});
afterAll(async () => {
  delete process.env.COFFER_CONTINUOUS_OFFSITE_MS;
  await s3.close();
});
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function repoFor(loc: S3Location): OffsiteRepo {
  const repo = openRepository(loc);
  cleanups.push(() => closeRepository(repo));
  return repo;
}

function enableContinuous(inst: Instance): void {
  const s = currentSettings(inst.paths.settings);
  saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, continuous: { ...s.backup.continuous, enabled: true } } });
}

async function protectedInstance(loc: S3Location, encryption?: Parameters<typeof configureOffsite>[2]) {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  configureOffsite(t.inst, loc, encryption);
  enableContinuous(t.inst);
  const lines: string[] = [];
  const sup = new ContinuousSupervisor(() => t.inst, { log: (l) => lines.push(l) });
  cleanups.push(() => sup.stop());
  sup.start(200);
  return { ...t, sup, lines };
}

async function upload(inst: Instance, admin: { id: number; username: string }, name: string, body: Buffer) {
  await createDocument(inst, admin as never, null, { name, body: Readable.from([body]), maxBytes: 1e9 });
}

/** The bucket holds every file the local replica has, once Litestream has synced what was written until now (its sync is 1 s). */
async function caughtUp(inst: Instance) {
  await sleep(2200);
  const files = (await localReplicaFiles(continuousPlan(inst).replica)).filter((f) => f.kind !== "settings");
  const t = Math.max(...files.map((f) => f.mtimeMs));
  return until(`the bucket to reach ${new Date(t).toISOString()}`, () => {
    const s = readOffsiteState(inst);
    return !!s?.last_restorable_at && Date.parse(s.last_restorable_at) >= t && s.pending === 0 && !s.error && s;
  });
}

const restoreFresh = (repo: OffsiteRepo, at: Date, keys?: AgeKeys) => restoreIntoFresh((fresh) => stageOffsitePointInTime(fresh, repo, at, { keys }), cleanups);

function bucketKeys(loc: S3Location): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith("._S3rver_object")) out.push(path.relative(path.join(s3.dir, loc.bucket), p).replace(/\._S3rver_object$/, ""));
    }
  };
  walk(path.join(s3.dir, loc.bucket));
  return out.sort();
}

describe("the plan for a point in time, from a bucket's listing alone", () => {
  const gen = "0123456789abcdef";
  const snap = (i: number, at: number, age = false) => parseContinuousObject(`generations/${gen}/snapshots/${i.toString(16).padStart(8, "0")}.snapshot.lz4.${at}${age ? ".age" : ""}`, 100)!;
  const wal = (i: number, off: number, at: number, age = false) => parseContinuousObject(`generations/${gen}/wal/${i.toString(16).padStart(8, "0")}_${off.toString(16).padStart(8, "0")}.wal.lz4.${at}${age ? ".age" : ""}`, 10)!;
  const settings = (at: number, age = false) => parseContinuousObject(`settings/${new Date(at).toISOString().replace(/[-:]/g, "")}-${"cd".repeat(32)}.json${age ? ".age" : ""}`, 10)!;
  const T = 1_796_000_000_000;

  it("takes the newest snapshot at or before the time and the segments up to it, nothing after; sizes a bucket made up are not objects", () => {
    const objects = [settings(T), snap(0, T), wal(0, 0, T + 10), wal(0, 4096, T + 2000), snap(1, T + 3000), wal(1, 0, T + 3100), wal(1, 4096, T + 5000)];
    const plan = planOffsiteRestore(objects, new Date(T + 4000), "s3://b/p");
    expect(plan.files.map((o) => o.name.replace(/^generations\/\w+\//, ""))).toEqual([`snapshots/00000001.snapshot.lz4.${T + 3000}`, `wal/00000001_00000000.wal.lz4.${T + 3100}`]);
    expect(() => planOffsiteRestore(objects, new Date(T + 6000), "s3://b/p")).toThrow(/outside the window/);
    expect(parseContinuousObject(`generations/${gen}/wal/00000000_00000000.wal.lz4.${T}`, NaN)).toBeNull();
    expect(parseContinuousObject(`generations/${gen}/wal/00000000_00000000.wal.lz4.${T}`, -1)).toBeNull();
    expect(parseContinuousObject(`generations/../wal/00000000_00000000.wal.lz4.${T}`, 1)).toBeNull();
  });

  it("two copies of one file: the encrypted one after encryption was turned on, an altered repository otherwise", () => {
    const both = [settings(T), settings(T, true), snap(0, T), snap(0, T, true), wal(0, 0, T + 10, true)];
    const plan = planOffsiteRestore(both, new Date(T + 10), "s3://b/p");
    expect([plan.settings, ...plan.files].every((o) => o.encrypted)).toBe(true);
    expect(() => planOffsiteRestore([settings(T), snap(0, T), snap(0, T + 1)], new Date(T + 5), "s3://b/p")).toThrow(/two copies/);
  });
});

describe.skipIf(!binary)("continuous protection offsite", () => {
  it("every change reaches the bucket within seconds, and a fresh server restores from it to a second before a document came", async () => {
    const loc = await s3.location("home");
    const t = await protectedInstance(loc);
    const a = crypto.randomBytes(40_000);
    await upload(t.inst, t.admin, "a.bin", a);
    await until("the local replica", () => continuousStatus(t.inst)[0].last_restorable_at);
    await sleep(1100);
    const beforeB = wholeSecond();
    await caughtUp(t.inst);
    await sleep(1100);
    const b = crypto.randomBytes(30_000);
    const wroteB = Date.now();
    await upload(t.inst, t.admin, "b.bin", b);
    const st = await caughtUp(t.inst);
    // Within seconds of the write (a 300 ms round here; the default is 5 s).
    expect(Date.parse(st.last_restorable_at!) - wroteB).toBeLessThan(10_000);

    const keys = bucketKeys(loc);
    expect(keys).toContain("home/coffer-repo.json");
    expect(keys).toContain(`home/blobs/${sha(a).slice(0, 2)}/${sha(a)}`);
    expect(keys).toContain(`home/blobs/${sha(b).slice(0, 2)}/${sha(b)}`);
    expect(keys.filter((k) => /^home\/continuous\/generations\/[0-9a-f]{16}\/snapshots\/[0-9a-f]{8}\.snapshot\.lz4\.\d{13}$/.test(k)).length).toBeGreaterThan(0);
    expect(keys.filter((k) => /^home\/continuous\/generations\/[0-9a-f]{16}\/wal\//.test(k)).length).toBeGreaterThan(0);
    expect(keys.filter((k) => /^home\/continuous\/settings\/\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{64}\.json$/.test(k)).length).toBeGreaterThan(0);

    // Health names the bucket beside the local replica.
    const offsite = continuousStatus(t.inst).find((c) => c.location === "offsite");
    expect(offsite).toMatchObject({ enabled: true, lag_seconds: 0, problem: null });

    const repo = repoFor(loc);
    const w = offsiteWindow(await listContinuousObjects(repo));
    expect(w.first!.getTime()).toBeLessThanOrEqual(beforeB.getTime());

    const before = await restoreFresh(repo, beforeB);
    expect([...documentContents(before.inst).keys()]).toEqual(["a.bin"]);
    expect(documentContents(before.inst).get("a.bin")).toBe(sha(a));
    expect(before.preview.warnings.join(" ")).toMatch(/from the continuous copy in s3:\/\//);
    // The users and settings of that time came too: the admin signs in on the new server.
    expect(before.inst.db.prepare("SELECT username FROM users ORDER BY id").pluck().all()).toEqual(["admin", "mia"]);
    expect(fs.readFileSync(before.inst.paths.secretKey).equals(t.inst.secretKey)).toBe(true);

    const latest = await restoreFresh(repo, new Date(Date.parse(st.last_restorable_at!)));
    expect(documentContents(latest.inst)).toEqual(new Map([["a.bin", sha(a)], ["b.bin", sha(b)]]));

    // The same from the command line, on a server that has nothing yet.
    const fresh = makeInstance();
    cleanups.push(fresh.cleanup);
    closeInstance(fresh.inst);
    const env = { AWS_ACCESS_KEY_ID: loc.accessKeyId, AWS_SECRET_ACCESS_KEY: loc.secretAccessKey, AWS_ENDPOINT_URL: s3.endpoint };
    const cli = await coffer(["--data-dir", fresh.inst.paths.root, "restore", "--to-time", beforeB.toISOString(), "--from", `s3://${loc.bucket}/home`, "--yes"], env);
    expect(cli.stderr).toMatch(/from the continuous copy in s3:\/\//);
    expect(cli.code).toBe(0);
    const byCli = openInstance(fresh.inst.paths.root);
    try {
      expect(documentContents(byCli)).toEqual(new Map([["a.bin", sha(a)]]));
    } finally {
      closeInstance(byCli);
    }
    const outside = await coffer(["--data-dir", fresh.inst.paths.root, "restore", "--to-time", "2020-01-01T00:00:00Z", "--from", `s3://${loc.bucket}/home`, "--yes"], env);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(/outside the window .*\(OUTSIDE_WINDOW\)/);

    await expect(stageOffsitePointInTime(makeInstance().inst, repo, new Date(w.first!.getTime() - 3600_000))).rejects.toMatchObject({ status: 422, code: "OUTSIDE_WINDOW", message: expect.stringMatching(/outside the window .* from \S+Z to \S+Z \(UTC\)/) });
  });

  it("encrypted: nothing in the bucket is readable without the key, and the recovery kit's identity restores a time", async () => {
    const loc = await s3.location("enc");
    const key = await generateKey();
    const t = await protectedInstance(loc, { recipients: [key.recipient] });
    const a = Buffer.from("a private letter ".repeat(2000));
    await upload(t.inst, t.admin, "letter.txt", a);
    await until("the local replica", () => continuousStatus(t.inst)[0].last_restorable_at);
    await caughtUp(t.inst);
    const keys = bucketKeys(loc).filter((k) => k.startsWith("enc/continuous/") || k.startsWith("enc/blobs/"));
    expect(keys.length).toBeGreaterThan(3);
    expect(keys.every((k) => k.endsWith(".age"))).toBe(true);
    expect(keys.join("\n")).not.toContain(sha(a));
    for (const k of keys) expect(fs.readFileSync(s3.objectFile(loc.bucket, k)).subarray(0, 21).toString()).toBe("age-encryption.org/v1");

    const repo = repoFor(loc);
    const at = new Date(Date.parse(readOffsiteState(t.inst)!.last_restorable_at!));
    await expect(stageOffsitePointInTime(makeInstance().inst, repo, at)).rejects.toMatchObject({ code: "KEY_REQUIRED" });
    const other = await generateKey();
    await expect(stageOffsitePointInTime(makeInstance().inst, repo, at, { keys: { identities: parseIdentities(other.identity) } })).rejects.toMatchObject({ code: "KEY_MISMATCH" });
    const r = await restoreFresh(repo, at, { identities: parseIdentities(key.identity) });
    expect(documentContents(r.inst)).toEqual(new Map([["letter.txt", sha(a)]]));

    // Someone with write access to the bucket plants plain settings (their own keys) just before that time: refused, not a way round the key.
    const planted = `settings/${new Date(at.getTime() - 1).toISOString().replace(/[-:]/g, "")}-${"ab".repeat(32)}.json`;
    await continuousTarget(repo).putSmall(planted, Buffer.from("{}"));
    await expect(stageOffsitePointInTime(makeInstance().inst, repo, at, { keys: { identities: parseIdentities(key.identity) } })).rejects.toMatchObject({ status: 422, code: "OFFSITE_NAME_MISMATCH" });
  });

  it("the bucket unreachable: changes wait locally, health says how far behind, and all of it is there once it answers", async () => {
    const loc = await s3.location("down");
    const proxy = await startFaultProxy(s3.endpoint, { mode: "pass" });
    cleanups.push(() => proxy.close());
    const t = await protectedInstance({ ...loc, endpoint: proxy.endpoint });
    await upload(t.inst, t.admin, "first.bin", crypto.randomBytes(10_000));
    await until("the local replica", () => continuousStatus(t.inst)[0].last_restorable_at);
    const up = await caughtUp(t.inst);

    proxy.failNext("500", () => true, 1_000_000);
    const lost = crypto.randomBytes(20_000);
    await upload(t.inst, t.admin, "during.bin", lost);
    const down = await until("a failed round", () => {
      const s = readOffsiteState(t.inst);
      return s?.error ? s : null;
    });
    expect(down.error).toMatch(/500|failed|storage/i);
    expect(t.lines.join("\n")).toMatch(/changes could not be sent to s3:\/\/.* they wait in the local replica/);
    await sleep(2500);
    const behind = await until("health to say the bucket is behind", () => {
      const o = continuousStatus(t.inst).find((c) => c.location === "offsite");
      return o && o.lag_seconds !== null && o.lag_seconds >= 2 && o;
    });
    expect(behind.problem).toMatch(/^Changes could not be sent to s3:\/\/\S+ since \d\d:\d\d:\d\d UTC \(.*500.*\); \d+ seconds of changes wait in the local replica and are sent when it answers\.$/);
    expect(healthReport(t.inst).reasons.find((r) => r.code === "CONTINUOUS_OFFSITE_BEHIND")?.message).toBe(behind.problem);
    expect(behind.last_restorable_at).toBe(up.last_restorable_at);
    // The local replica went on keeping every change.
    expect(continuousStatus(t.inst)[0].lag_seconds).toBe(0);

    proxy.clear();
    const back = await caughtUp(t.inst);
    expect(back.error).toBeNull();
    await until("the log to say it caught up", () => t.lines.some((l) => /is reachable again/.test(l)));
    expect(continuousStatus(t.inst).find((c) => c.location === "offsite")).toMatchObject({ lag_seconds: 0, problem: null });
    expect(healthReport(t.inst).reasons.map((r) => r.code)).not.toContain("CONTINUOUS_OFFSITE_BEHIND");
    const r = await restoreFresh(repoFor(loc), new Date(Date.parse(back.last_restorable_at!)));
    expect(documentContents(r.inst).get("during.bin")).toBe(sha(lost));
  });

  it("offsite retention keeps every document file the window needs, though no snapshot names it", async () => {
    const loc = await s3.location("keep");
    const t = await protectedInstance(loc);
    const kept = crypto.randomBytes(8000);
    const erased = crypto.randomBytes(9000);
    await upload(t.inst, t.admin, "kept.bin", kept);
    await upload(t.inst, t.admin, "erased.bin", erased);
    await until("the local replica", () => continuousStatus(t.inst)[0].last_restorable_at);
    await caughtUp(t.inst);
    // Erased for good inside the window: its file stays for the window, here and in the bucket.
    const id = t.inst.db.prepare("SELECT id FROM documents WHERE name = 'erased.bin'").pluck().get() as number;
    deleteDocument(t.inst, t.admin, null, id);
    deleteForever(t.inst, t.admin, null, id);
    const blobKey = (b: Buffer) => `keep/blobs/${sha(b).slice(0, 2)}/${sha(b)}`;
    // Two days on, past the one-day grace for blobs no snapshot names (there is no snapshot at all).
    const later = new Date(Date.now() + 2 * 24 * 3600_000);
    const policy = { mode: "count", count: 7, days: 30, gfs: { latest: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0 } } as const;
    const repo = repoFor(loc);
    const r = await pruneOffsite(repo, policy, later, undefined, continuousBlobObjects(t.inst));
    expect(r.blobs).toBe(0);
    expect(bucketKeys(loc)).toEqual(expect.arrayContaining([blobKey(kept), blobKey(erased)]));
    // With continuous protection no longer following the bucket, they are any unused blob again.
    const s = currentSettings(t.inst.paths.settings);
    saveSettings(t.inst.paths.settings, { ...s, backup: { ...s.backup, continuous: { ...s.backup.continuous, offsite: false } } });
    expect(continuousBlobObjects(t.inst).size).toBe(0);
    expect((await pruneOffsite(repo, policy, later, undefined, continuousBlobObjects(t.inst))).blobs).toBe(2);
  });

  it("a bucket that was altered: an object whose content disagrees with its name is refused, and nothing is staged", async () => {
    const loc = await s3.location("hostile");
    const t = await protectedInstance(loc);
    await upload(t.inst, t.admin, "x.bin", crypto.randomBytes(5000));
    await until("the local replica", () => continuousStatus(t.inst)[0].last_restorable_at);
    const st = await caughtUp(t.inst);
    await t.sup.stop();
    const wal = bucketKeys(loc).find((k) => k.includes("/snapshots/"))!;
    // The snapshot now says it is encrypted, though it is not: an attacker who swapped objects.
    fs.writeFileSync(s3.objectFile(loc.bucket, wal), "age-encryption.org/v1\n-> X25519 garbage\n");
    const fresh = makeInstance();
    cleanups.push(fresh.cleanup);
    await expect(stageOffsitePointInTime(fresh.inst, repoFor(loc), new Date(Date.parse(st.last_restorable_at!)))).rejects.toMatchObject({ status: 422, code: "OFFSITE_NAME_MISMATCH" });
    expect(fs.readdirSync(fresh.inst.paths.staging)).toEqual([]);
  });
});
