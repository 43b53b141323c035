import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDocument, deleteDocument } from "@/lib/vault/documents";
import { deleteForever } from "@/lib/vault/trash";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import { snapshotDatabase } from "@/lib/backup/format/db-snapshot";
import { generateKey, parseIdentities, type AgeKeys } from "@/lib/crypto/age";
import { runBackupJob } from "@/lib/backup/jobs/runner";
import { recentRuns } from "@/lib/backup/runs";
import type { Instance } from "@/lib/instance";
import { adoptRepository, closeRepository, listOffsiteSnapshots, openRepository, readIndex, type OffsiteRepo } from "@/lib/backup/offsite/repository";
import { exportSnapshot } from "@/lib/backup/offsite/pull";
import { pruneOffsite } from "@/lib/backup/offsite/prune";
import { pushOffsite } from "@/lib/backup/offsite/push";
import { testOffsite } from "@/lib/backup/offsite/checks";
import { stageOffsiteSnapshot } from "@/lib/backup/offsite/pull";
import type { S3Location } from "@/lib/backup/offsite/location";
import { documentContents, makeInstance, makeSetUpInstance, restoreIntoFresh, tempDir } from "../../support/instance";
import { startS3, configureOffsite, type TestS3 } from "../../support/s3";
import { startWebhook } from "../../support/webhook";
import { startFaultProxy } from "../../support/fault-proxy";
import { BackupScheduler } from "@/lib/backup/jobs/scheduler";

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3.close();
});
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sha = (b: Buffer | string) => crypto.createHash("sha256").update(b).digest("hex");

async function vaultInstance(docs = 3) {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  const contents: Buffer[] = [];
  for (let i = 0; i < docs; i++) {
    const body = i === 0 ? Buffer.from("Lorem ipsum dolor sit amet. ".repeat(5000)) : crypto.randomBytes(50_000 + i * 1000);
    contents.push(body);
    await createDocument(t.inst, t.admin, null, { name: `doc-${i}.bin`, body: Readable.from([body]), maxBytes: 1e9 });
  }
  return { ...t, contents };
}

function repoFor(loc: S3Location): OffsiteRepo {
  const repo = openRepository(loc);
  cleanups.push(() => closeRepository(repo));
  return repo;
}

/** One offsite push of the instance as it is now (its own database snapshot, as a job takes). */
async function push(inst: Instance, repo: OffsiteRepo, at: Date, extra: { stillHeld?: () => boolean } = {}) {
  const work = fs.mkdtempSync(path.join(inst.paths.tmp, "t-"));
  try {
    const dbSnapshot = await snapshotDatabase(inst, work);
    return await pushOffsite(inst, repo, { scope: "full", trigger: "manual", dbSnapshot, now: at, ...extra });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Every object key in the bucket, from s3rver's own files. */
function bucketKeys(loc: S3Location): string[] {
  const root = path.join(s3.dir, loc.bucket);
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith("._S3rver_object")) out.push(path.relative(root, p).replace(/\._S3rver_object$/, ""));
    }
  };
  if (fs.existsSync(root)) walk(root);
  return out.sort();
}

const restoreInto = (repo: OffsiteRepo, name: string | null, keys?: AgeKeys) => restoreIntoFresh((fresh) => stageOffsiteSnapshot(fresh, repo, name, { keys }), cleanups);

describe("offsite repository", () => {
  it("the first push sends everything, the next only what changed; a fresh instance restores from the bucket", async () => {
    const { inst, admin, contents } = await vaultInstance(3);
    const loc = await s3.location("home");
    const repo = repoFor(loc);

    const first = await push(inst, repo, new Date("2026-11-20T03:00:00Z"));
    expect(first).toMatchObject({ snapshot: "coffer_full_20261120_030000Z.tar.gz", blobsUploaded: 3, blobsSkipped: 0 });
    expect(first.bytesUploaded).toBe(contents.reduce((a, c) => a + c.length, 0) + first.snapshotBytes);
    const keys = bucketKeys(loc);
    expect(keys).toContain("home/coffer-repo.json");
    expect(keys).toContain("home/snapshots/coffer_full_20261120_030000Z.tar.gz");
    for (const c of contents) expect(keys).toContain(`home/blobs/${sha(c).slice(0, 2)}/${sha(c)}`);

    const added = crypto.randomBytes(70_000);
    await createDocument(inst, admin, null, { name: "new.bin", body: Readable.from([added]), maxBytes: 1e9 });
    const second = await push(inst, repo, new Date("2026-11-21T03:00:00Z"));
    expect(second).toMatchObject({ blobsUploaded: 1, blobsSkipped: 3 });
    // Incremental: the new blob and the snapshot, nothing else.
    expect(second.bytesUploaded).toBe(added.length + second.snapshotBytes);

    const snaps = await listOffsiteSnapshots(repo);
    expect(snaps.map((s) => [s.name, s.documents, s.verified])).toEqual([
      ["coffer_full_20261121_030000Z.tar.gz", 4, true],
      ["coffer_full_20261120_030000Z.tar.gz", 3, true],
    ]);

    const { preview, inst: restored } = await restoreInto(repo, null);
    expect(preview).toMatchObject({ scope: "full", vault: { objects: 4 } });
    expect(documentContents(restored)).toEqual(documentContents(inst));
    // The older snapshot restores as it was.
    const older = await restoreInto(repo, "coffer_full_20261120_030000Z.tar.gz");
    expect(older.inst.db.prepare("SELECT count(*) FROM documents").pluck().get()).toBe(3);
  });

  it("encrypted: names reveal no document hash, the real age CLI decrypts the objects, and restore needs the key", async () => {
    const { inst, contents } = await vaultInstance(2);
    const key = generateKey();
    const loc = await s3.location("enc");
    configureOffsite(inst, loc, { recipients: [key.recipient] });
    const repo = repoFor(loc);
    const r = await push(inst, repo, new Date("2026-11-20T03:00:00Z"));
    expect(r.snapshot).toBe("coffer_full_20261120_030000Z.tar.gz.age");
    const keys = bucketKeys(loc);
    for (const c of contents) expect(keys.join("\n")).not.toContain(sha(c));
    const blobKeys = keys.filter((k) => k.startsWith("enc/blobs/"));
    expect(blobKeys).toHaveLength(2);
    expect(blobKeys.every((k) => /\/[0-9a-f]{64}\.age$/.test(k))).toBe(true);

    const work = tempDir("coffer-age-");
    cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
    fs.writeFileSync(path.join(work, "key.txt"), key.identity + "\n");
    const plain = execFileSync("age", ["-d", "-i", path.join(work, "key.txt"), s3.objectFile(loc.bucket, blobKeys[0])]);
    expect(contents.map((c) => sha(c))).toContain(sha(plain));
    const listing = execFileSync("sh", ["-c", `age -d -i "${work}/key.txt" "${s3.objectFile(loc.bucket, `enc/snapshots/${r.snapshot}`)}" | tar tz`]).toString();
    expect(listing.split("\n").filter(Boolean)).toEqual(["backup_meta.json", "coffer.db", "settings.yaml", "keys/secret.key", "keys/config.key"]);

    await expect(restoreInto(repo, null)).rejects.toMatchObject({ code: "KEY_REQUIRED" });
    const { inst: restored } = await restoreInto(repo, null, { identities: parseIdentities(key.identity) });
    expect(documentContents(restored)).toEqual(documentContents(inst));
  });

  it("passphrase mode: one scrypt for the snapshot; blobs open with the key the snapshot carries", async () => {
    const { inst } = await vaultInstance(2);
    const loc = await s3.location("pass");
    configureOffsite(inst, loc, { passphrase: "correct horse battery staple" });
    const repo = repoFor(loc);
    await push(inst, repo, new Date("2026-11-20T03:00:00Z"));
    await expect(restoreInto(repo, null, { passphrase: "wrong passphrase here" })).rejects.toMatchObject({ code: "KEY_MISMATCH" });
    const { inst: restored } = await restoreInto(repo, null, { passphrase: "correct horse battery staple" });
    expect(documentContents(restored)).toEqual(documentContents(inst));
  });

  it("an index the bucket garbled makes its snapshot incomplete, and a restore of it a 404, not a crash", async () => {
    const { inst } = await vaultInstance(1);
    const loc = await s3.location("garbled");
    const repo = repoFor(loc);
    const r = await push(inst, repo, new Date("2026-11-20T03:00:00Z"));
    fs.writeFileSync(s3.objectFile(loc.bucket, `garbled/indexes/${r.snapshot}.json`), JSON.stringify({ snapshot: r.snapshot, blobs: "not a list" }));
    expect((await listOffsiteSnapshots(repo)).map((x) => [x.name, x.verified])).toEqual([[r.snapshot, false]]);
    const fresh = makeInstance();
    cleanups.push(fresh.cleanup);
    await expect(stageOffsiteSnapshot(fresh.inst, repo, r.snapshot)).rejects.toMatchObject({ status: 404 });
  });

  it("a snapshot larger than this server takes is refused before any document file is fetched", async () => {
    const { inst } = await vaultInstance(2);
    const loc = await s3.location("big");
    const repo = repoFor(loc);
    await push(inst, repo, new Date("2026-11-20T03:00:00Z"));
    const fresh = makeInstance();
    cleanups.push(fresh.cleanup);
    process.env.COFFER_RESTORE_MAX_BYTES = "50000";
    try {
      const proxy = await startFaultProxy(s3.endpoint, { mode: "pass" });
      cleanups.push(() => proxy.close());
      let blobGets = 0;
      proxy.failNext("500", (req) => (req.method === "GET" && req.url!.includes("/blobs/") ? (blobGets++, false) : false));
      const err = await stageOffsiteSnapshot(fresh.inst, repoFor({ ...loc, endpoint: proxy.endpoint }), null).catch((e) => e);
      expect(err).toMatchObject({ status: 413, code: "TOO_LARGE" });
      expect(blobGets).toBe(0);
      expect(fs.readdirSync(fresh.inst.paths.staging)).toEqual([]);
    } finally {
      delete process.env.COFFER_RESTORE_MAX_BYTES;
    }
  });

  it("a damaged or missing object is found at restore and named; the fresh instance is untouched", async () => {
    const { inst, contents } = await vaultInstance(2);
    const loc = await s3.location("rot");
    const repo = repoFor(loc);
    await push(inst, repo, new Date("2026-11-20T03:00:00Z"));
    const victim = `${sha(contents[1]).slice(0, 2)}/${sha(contents[1])}`;
    const file = s3.objectFile(loc.bucket, `rot/blobs/${victim}`);
    const bytes = fs.readFileSync(file);
    bytes[100] ^= 1;
    fs.writeFileSync(file, bytes);
    const fresh = makeInstance();
    cleanups.push(fresh.cleanup);
    const err = await stageOffsiteSnapshot(fresh.inst, repo, null).catch((e) => e);
    expect(err).toMatchObject({ code: "OFFSITE_CORRUPT" });
    expect(err.message).toContain(`blobs/${victim}`);
    expect(fs.readdirSync(fresh.inst.paths.staging)).toEqual([]);
    expect(fresh.inst.db.prepare("SELECT count(*) FROM documents").pluck().get()).toBe(0);

    fs.rmSync(file);
    const gone = await stageOffsiteSnapshot(fresh.inst, repo, null).catch((e) => e);
    expect(gone).toMatchObject({ code: "OFFSITE_MISSING" });
    expect(gone.message).toContain(`blobs/${victim}`);
  });

  it("a vault file damaged on disk is not sent as if it were that document", async () => {
    const { inst, contents } = await vaultInstance(2);
    const loc = await s3.location("vaultrot");
    const repo = repoFor(loc);
    const h = sha(contents[1]);
    const file = path.join(inst.paths.vault, h.slice(0, 2), h);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 1; // the very last byte: caught before it is sent
    fs.chmodSync(file, 0o600);
    fs.writeFileSync(file, bytes);
    await expect(push(inst, repo, new Date("2026-11-20T03:00:00Z"))).rejects.toThrow(`the vault file ${h} does not match its hash`);
    expect(bucketKeys(loc).filter((k) => k.includes(h))).toEqual([]);
    expect(await listOffsiteSnapshots(repo)).toEqual([]);
  });

  it("an interrupted run leaves no snapshot, and the next run skips the blobs already sent", async () => {
    const { inst } = await vaultInstance(3);
    const loc = await s3.location("cut");
    const repo = repoFor(loc);
    await expect(push(inst, repo, new Date("2026-11-20T03:00:00Z"), { stillHeld: () => false })).rejects.toThrow(/lock was lost/);
    expect(await listOffsiteSnapshots(repo)).toEqual([]);
    const next = await push(inst, repo, new Date("2026-11-20T04:00:00Z"));
    expect(next).toMatchObject({ blobsUploaded: 0, blobsSkipped: 3 });
    expect((await listOffsiteSnapshots(repo)).map((s) => s.name)).toEqual(["coffer_full_20261120_040000Z.tar.gz"]);
  });

  it("a second instance is refused the repository until an admin adopts it", async () => {
    const a = await vaultInstance(1);
    const b = await vaultInstance(1);
    const loc = await s3.location("shared");
    const repo = repoFor(loc);
    await push(a.inst, repo, new Date("2026-11-20T03:00:00Z"));
    const err = await push(b.inst, repo, new Date("2026-11-20T04:00:00Z")).catch((e) => e);
    expect(err).toMatchObject({ code: "OFFSITE_OTHER_INSTANCE", status: 409 });
    expect(err.message).toMatch(/belongs to another Coffer instance/);
    await expect(testOffsite(b.inst, loc)).rejects.toMatchObject({ code: "OFFSITE_OTHER_INSTANCE" });
    await adoptRepository(repo, b.inst);
    await push(b.inst, repo, new Date("2026-11-20T04:00:00Z"));
    await expect(push(a.inst, repo, new Date("2026-11-20T05:00:00Z"))).rejects.toMatchObject({ code: "OFFSITE_OTHER_INSTANCE" });
  });

  it("remote retention keeps what the policy says; unreferenced blobs go only after the grace period", async () => {
    const { inst, admin, contents } = await vaultInstance(2);
    const loc = await s3.location("keep");
    const repo = repoFor(loc);
    await push(inst, repo, new Date("2026-11-18T03:00:00Z"));
    const doomed = inst.db.prepare("SELECT id FROM documents WHERE name = 'doc-1.bin'").pluck().get() as number;
    deleteDocument(inst, admin, null, doomed);
    deleteForever(inst, admin, null, doomed);
    await push(inst, repo, new Date("2026-11-19T03:00:00Z"));
    await push(inst, repo, new Date("2026-11-20T03:00:00Z"));
    const policy = { mode: "count" as const, count: 2, days: 30, gfs: { latest: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0 } };

    const within = await pruneOffsite(repo, policy, new Date("2026-11-20T04:00:00Z"));
    expect(within.snapshots).toEqual(["coffer_full_20261118_030000Z.tar.gz"]);
    expect(within.blobs).toBe(0); // just written: inside the grace period
    const doomedKey = `keep/blobs/${sha(contents[1]).slice(0, 2)}/${sha(contents[1])}`;
    expect(bucketKeys(loc)).toContain(doomedKey);

    // Grace 0 and the real clock (the objects' times are the server's).
    const after = await pruneOffsite(repo, policy, new Date(Date.now() + 1000), 0);
    expect(after.blobs).toBe(1);
    const keys = bucketKeys(loc);
    expect(keys).not.toContain(doomedKey);
    expect(keys).toContain(`keep/blobs/${sha(contents[0]).slice(0, 2)}/${sha(contents[0])}`);
    expect(keys.filter((k) => k.startsWith("keep/snapshots/"))).toEqual([
      "keep/snapshots/coffer_full_20261119_030000Z.tar.gz",
      "keep/snapshots/coffer_full_20261120_030000Z.tar.gz",
    ]);
    // What is kept still restores whole.
    const { inst: restored } = await restoreInto(repo, "coffer_full_20261119_030000Z.tar.gz");
    expect(documentContents(restored)).toEqual(documentContents(inst));
  });

  it("the newest snapshot that read back whole is never pruned", async () => {
    const { inst } = await vaultInstance(1);
    const loc = await s3.location("newest");
    const repo = repoFor(loc);
    await push(inst, repo, new Date("2026-11-18T03:00:00Z"));
    await push(inst, repo, new Date("2026-11-19T03:00:00Z"));
    // The newer snapshot's object is cut short in the bucket: its size no longer matches its index.
    const newest = s3.objectFile(loc.bucket, "newest/snapshots/coffer_full_20261119_030000Z.tar.gz");
    fs.truncateSync(newest, 100);
    const policy = { mode: "count" as const, count: 1, days: 30, gfs: { latest: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0 } };
    const r = await pruneOffsite(repo, policy, new Date("2026-11-20T00:00:00Z"), 0);
    expect(r.snapshots).toEqual([]);
    expect((await listOffsiteSnapshots(repo)).map((s) => [s.name, s.verified])).toEqual([
      ["coffer_full_20261119_030000Z.tar.gz", false],
      ["coffer_full_20261118_030000Z.tar.gz", true],
    ]);
  });

  it("export assembles a portable full archive that tar reads", async () => {
    const { inst, contents } = await vaultInstance(2);
    const loc = await s3.location("export");
    const repo = repoFor(loc);
    const r = await push(inst, repo, new Date("2026-11-20T03:00:00Z"));
    const work = tempDir("coffer-export-");
    cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }));
    const file = path.join(work, "full.tar.gz");
    const meta = await exportSnapshot(repo, r.snapshot, fs.createWriteStream(file), { tmpDir: work });
    expect(meta).toMatchObject({ scope: "full", vault: { objects: 2 } });
    const names = execFileSync("tar", ["tzf", file]).toString().split("\n").filter(Boolean);
    expect(names.slice(0, 5)).toEqual(["backup_meta.json", "coffer.db", "settings.yaml", "keys/secret.key", "keys/config.key"]);
    expect(names.filter((n) => n.startsWith("vault/")).sort()).toEqual(contents.map((c) => `vault/${sha(c).slice(0, 2)}/${sha(c)}`).sort());
    expect(fs.readdirSync(work)).toEqual(["full.tar.gz"]);
  });
});

describe("offsite faults", () => {
  it("test connection names what failed: credentials, bucket, DNS, refused, timeout", async () => {
    const { inst } = await vaultInstance(0);
    const loc = await s3.location("probe");
    await expect(testOffsite(inst, loc)).resolves.toMatchObject({ ok: true });
    await expect(testOffsite(inst, { ...loc, accessKeyId: "NOBODY" })).rejects.toMatchObject({ code: "OFFSITE_CREDENTIALS" });
    await expect(testOffsite(inst, { ...loc, bucket: "no-such-bucket" })).rejects.toMatchObject({ code: "OFFSITE_NO_BUCKET", message: expect.stringContaining("no-such-bucket") });
    await expect(testOffsite(inst, { ...loc, endpoint: "http://coffer-test.invalid:9" })).rejects.toMatchObject({ code: "OFFSITE_DNS" });
    const closed = await startFaultProxy(s3.endpoint, { mode: "refuse" });
    await expect(testOffsite(inst, { ...loc, endpoint: closed.endpoint })).rejects.toMatchObject({ code: "OFFSITE_UNREACHABLE" });
    const silent = await startFaultProxy(s3.endpoint, { mode: "silent" });
    cleanups.push(() => silent.close());
    await expect(testOffsite(inst, { ...loc, endpoint: silent.endpoint }, { timeoutMs: 500 })).rejects.toMatchObject({ code: "OFFSITE_TIMEOUT" });
  });

  it("a server that answers 500 once is retried; a connection cut mid-upload fails the offsite part alone, and the next run completes", async () => {
    const { inst } = await vaultInstance(3);
    const loc = await s3.location("flaky");
    const proxy = await startFaultProxy(s3.endpoint, { mode: "pass" });
    cleanups.push(() => proxy.close());
    configureOffsite(inst, { ...loc, endpoint: proxy.endpoint });

    proxy.failNext("500", (req) => req.method === "PUT");
    const t0 = Date.now();
    const ok = await runBackupJob(inst, { scope: "full", trigger: "manual", now: new Date(t0) });
    expect(ok.offsite).toMatchObject({ ok: true, result: { blobsUploaded: 3 } });
    expect(proxy.injected()).toBe(1);

    const { admin } = { admin: inst.db.prepare("SELECT * FROM users WHERE username = 'admin'").get() as never };
    await createDocument(inst, admin, null, { name: "late.bin", body: Readable.from([crypto.randomBytes(3 * 1024 * 1024)]), maxBytes: 1e9 });
    proxy.failNext("cut", (req) => req.method === "PUT" && req.url!.includes("/blobs/"), 3);
    const cut = await runBackupJob(inst, { scope: "full", trigger: "manual", now: new Date(t0 + 1000) });
    expect(cut.local.verified).toBe(true);
    expect(cut.offsite).toMatchObject({ ok: false });
    expect((cut.offsite as { error: Error }).error.message).toMatch(/connection to 127\.0\.0\.1:\d+ was cut/);
    expect(proxy.injected()).toBe(4); // the 500, then the cut upload and both of the SDK's retries
    proxy.clear();
    const runs = recentRuns(inst.db, 4);
    expect(runs[0]).toMatchObject({ target: "offsite", status: "failed" });
    expect(runs[1]).toMatchObject({ target: "local", status: "success" });
    const repo = repoFor(loc);
    expect((await listOffsiteSnapshots(repo)).length).toBe(1);

    const again = await runBackupJob(inst, { scope: "full", trigger: "manual", now: new Date(t0 + 2000) }); // a new second: a new snapshot name
    expect(again.offsite).toMatchObject({ ok: true, result: { blobsUploaded: 1, blobsSkipped: 3 } });
    expect((await listOffsiteSnapshots(repo)).length).toBe(2);
  });
});

describe("one job, one configuration", () => {
  it("settings saved while a job runs apply to the next job: the local archive and the offsite snapshot of one job are encrypted alike", async () => {
    const { inst } = await vaultInstance(3);
    const loc = await s3.location("one-config");
    configureOffsite(inst, loc);
    const key = generateKey();
    let edited = false;
    const r = await runBackupJob(inst, {
      scope: "full",
      trigger: "manual",
      // Mid-way through the local archive, an admin turns encryption on.
      onProgress: () => {
        if (edited) return;
        edited = true;
        const s = currentSettings(inst.paths.settings);
        saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, encryption: { mode: "recipients", recipients: [key.recipient], passphrase: null } } });
      },
    });
    expect(edited).toBe(true);
    expect(r.local.name).toMatch(/\.tar\.gz$/);
    expect(r.offsite).toMatchObject({ ok: true, result: { snapshot: r.local.name } });
    const repo = repoFor(loc);
    expect((await readIndex(repo, r.local.name))?.encryption).toBe("off");
    const next = await runBackupJob(inst, { scope: "full", trigger: "manual", now: new Date(Date.now() + 1000) });
    expect(next.local.name).toMatch(/\.tar\.gz\.age$/);
    expect(next.offsite).toMatchObject({ ok: true, result: { snapshot: next.local.name } });
    expect((await readIndex(repo, next.local.name))?.encryption).toBe("recipients");
  });
});

describe("offsite on schedule", () => {
  it("each scheduled run sends its result offsite, remote retention follows the job's policy, and a failed offsite part alerts", async () => {
    const hook = await startWebhook();
    cleanups.push(hook.close);
    const received = hook.received;

    const { inst, admin } = await vaultInstance(2);
    const loc = await s3.location("sched");
    const proxy = await startFaultProxy(s3.endpoint, { mode: "pass" });
    cleanups.push(() => proxy.close());
    configureOffsite(inst, { ...loc, endpoint: proxy.endpoint });
    const s0 = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, {
      ...s0,
      backup: {
        ...s0.backup,
        enabled: true,
        schedule: "hourly",
        retention: { mode: "count", count: 1, days: 30, gfs: { latest: 1, hourly: 0, daily: 0, weekly: 0, monthly: 0 } },
        notify: { webhook_url: encryptSecret(inst.configKey, hook.url) },
      },
    });
    let t = Date.now();
    const scheduler = new BackupScheduler(() => inst, { now: () => t, log: () => {}, alertOptions: { backoffMs: [] } });
    const repo = repoFor(loc);
    const offsiteNames = async () => (await listOffsiteSnapshots(repo)).map((x) => x.name);

    expect(await scheduler.tick()).toBe("ran");
    const first = await offsiteNames();
    expect(first).toHaveLength(1);
    t += 61 * 60 * 1000;
    expect(await scheduler.tick()).toBe("ran");
    const second = await offsiteNames();
    expect(second).toHaveLength(1); // count 1: the older snapshot was pruned
    expect(second).not.toEqual(first);
    const runs = recentRuns(inst.db, 4).map((r) => [r.target, r.status, r.file]);
    expect(runs).toEqual([
      ["offsite", "success", second[0]],
      ["local", "success", second[0]],
      ["offsite", "success", first[0]],
      ["local", "success", first[0]],
    ]);
    expect(received).toEqual([]);

    // The bucket goes away mid-run: the local part stands, the offsite part fails and alerts, nothing offsite is pruned.
    await createDocument(inst, admin, null, { name: "new.bin", body: Readable.from([crypto.randomBytes(20_000)]), maxBytes: 1e9 });
    proxy.failNext("cut", (req) => req.method === "PUT", 100);
    t += 61 * 60 * 1000;
    expect(await scheduler.tick()).toBe("ran");
    expect(await offsiteNames()).toEqual(second);
    expect(recentRuns(inst.db, 2).map((r) => [r.target, r.status])).toEqual([
      ["offsite", "failed"],
      ["local", "success"],
    ]);
    // (The fake clock ran ahead of the real finish times, so a staleness alert comes too; not what this test is about.)
    expect(received.filter((e) => e.event !== "backup.stale")).toMatchObject([{ event: "offsite.failed", error: expect.stringMatching(/was cut/) }]);
  });
});
