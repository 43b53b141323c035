import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Instance } from "@/lib/instance";
import { createDocument } from "@/lib/vault/documents";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import { generateKey } from "@/lib/crypto/age";
import { runBackupJob } from "@/lib/backup/jobs/runner";
import { writeStoredBackup } from "@/lib/backup/local/stored";
import { recentRuns } from "@/lib/backup/runs";
import { archiveBaseName } from "@/lib/backup/format/tables";
import { verifySlice, SLICE_EVERY_MS } from "@/lib/backup/proof/verify";
import { verificationRows } from "@/lib/backup/proof/verifications-table";
import { runDrill } from "@/lib/backup/proof/drill";
import { recentDrills, type DrillDetail } from "@/lib/backup/proof/drills-table";
import { ProofJob } from "@/lib/backup/proof/proof";
import { healthReasons, healthReport } from "@/lib/health";
import { makeSetUpInstance } from "../../support/instance";
import { startS3, configureOffsite, type TestS3 } from "../../support/s3";
import { startWebhook } from "../../support/webhook";

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

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

async function instanceWithDocuments(docs = 3) {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  for (let i = 0; i < docs; i++) {
    const body = i === 0 ? Buffer.from("Lorem ipsum dolor sit amet. ".repeat(4000)) : crypto.randomBytes(40_000 + i * 1000);
    await createDocument(t.inst, t.admin, null, { name: `doc-${i}.bin`, body: Readable.from([body]), maxBytes: 1e9 });
  }
  return t;
}

async function withWebhook(inst: Instance) {
  const hook = await startWebhook();
  cleanups.push(hook.close);
  const s = currentSettings(inst.paths.settings);
  saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, notify: { webhook_url: encryptSecret(inst.configKey, hook.url) } } });
  return hook.received;
}

function setProof(inst: Instance, proof: { verify_period_days?: number; drill_every_days?: number }) {
  const s = currentSettings(inst.paths.settings);
  saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, proof: { ...s.backup.proof, ...proof } } });
}

/** Flip one byte of a file in place, at `at` (a fraction of its length). */
function flipByte(file: string, at = 0.5): void {
  const fd = fs.openSync(file, "r+");
  try {
    const pos = Math.floor(fs.fstatSync(fd).size * at);
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, pos);
    b[0] ^= 0x01;
    fs.writeSync(fd, b, 0, 1, pos);
  } finally {
    fs.closeSync(fd);
  }
}

describe("rolling verification", () => {
  it("re-reads every stored archive within the period, oldest-checked first, whatever the slice size", async () => {
    const { inst } = await instanceWithDocuments(1);
    const first = await writeStoredBackup(inst, { scope: "db", trigger: "manual" });
    // Thirty stored archives (copies of one, under the names thirty backups would have).
    const names = [first.name];
    for (let i = 1; i < 30; i++) {
      const name = archiveBaseName("db", new Date(Date.UTC(2026, 0, 1, 0, i)));
      fs.copyFileSync(path.join(inst.paths.backups, first.name), path.join(inst.paths.backups, name));
      names.push(name);
    }
    setProof(inst, { verify_period_days: 1 });
    let t = Date.parse("2026-11-23T00:00:00Z");
    const seen = new Map<string, number>();
    // A day of hourly slices, each allowed twice its share of the bytes (and no floor): every archive is read.
    for (let slice = 0; slice < 24; slice++) {
      const r = await verifySlice(inst, { now: () => new Date(t), minSliceBytes: 1 });
      expect(r.checked.length).toBeLessThan(names.length); // a slice, not everything
      for (const c of r.checked) seen.set(c.object, (seen.get(c.object) ?? 0) + 1);
      t += SLICE_EVERY_MS;
    }
    expect([...seen.keys()].sort()).toEqual([...names].sort());
    // Oldest first: no archive read a second time before every other had its first.
    expect(Math.max(...seen.values()) - Math.min(...seen.values())).toBeLessThanOrEqual(1);
    const rows = verificationRows(inst.db);
    expect(rows.every((r) => r.ok === 1 && r.kind === "archive" && r.target === "local")).toBe(true);
  });

  it("finds a 1-byte corruption planted in a stored archive (plain and encrypted) on the next pass, alerts once, and says so in the run history and on Health", async () => {
    const { inst } = await instanceWithDocuments(3);
    const received = await withWebhook(inst);
    const t0 = Date.now();
    const plain = await writeStoredBackup(inst, { scope: "full", trigger: "manual", now: new Date(t0) });
    const key = generateKey();
    const s = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, encryption: { mode: "recipients", recipients: [key.recipient], passphrase: null } } });
    const sealed = await writeStoredBackup(inst, { scope: "full", trigger: "manual", now: new Date(t0 + 1000) });

    let t = Date.now();
    const slice = () => verifySlice(inst, { now: () => new Date(t), alertOptions: { backoffMs: [] } });
    expect((await slice()).checked.map((c) => c.ok)).toEqual([1, 1]);
    expect(healthReasons(inst).map((r) => r.code)).not.toContain("VERIFY_FAILED");

    flipByte(path.join(inst.paths.backups, plain.name));
    flipByte(path.join(inst.paths.backups, sealed.name));
    t += SLICE_EVERY_MS;
    const found = await slice();
    expect(found.newlyFailed.map((r) => r.object).sort()).toEqual([plain.name, sealed.name].sort());
    expect(found.newlyFailed.find((r) => r.object === sealed.name)!.error).toMatch(/ciphertext differs/);
    expect(received.filter((a) => a.event === "verify.failed")).toHaveLength(1);
    expect(received[0].error).toContain(plain.name);

    // Still damaged on the next pass: recorded again, not alerted again.
    t += SLICE_EVERY_MS;
    expect((await slice()).newlyFailed).toEqual([]);
    expect(received).toHaveLength(1);

    const verifyRuns = recentRuns(inst.db).filter((r) => r.target === "verify");
    expect(verifyRuns.map((r) => [r.status, r.file]).sort()).toEqual([["failed", plain.name], ["failed", sealed.name]].sort());
    const reasons = healthReasons(inst);
    expect(reasons.find((r) => r.code === "VERIFY_FAILED")?.message).toMatch(/^2 stored backup object\(s\) failed/);
    expect(healthReport(inst).proof.verification).toMatchObject({ objects: 2, failed: 2 });
  });

  it("an archive made with a passphrase since changed is checked by its bytes, not reported damaged", async () => {
    const { inst } = await instanceWithDocuments(1);
    const setPassphrase = (p: string) => {
      const s = currentSettings(inst.paths.settings);
      saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, encryption: { mode: "passphrase", recipients: [], passphrase: encryptSecret(inst.configKey, p) } } });
    };
    setPassphrase("the first passphrase");
    const old = await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    setPassphrase("a newer passphrase");
    expect((await verifySlice(inst)).checked).toMatchObject([{ object: old.name, ok: 1 }]);
    // Nor is a drill of it a failure: it is skipped, saying why.
    expect(await runDrill(inst, { trigger: "manual" })).toMatchObject({ status: "skipped", error: expect.stringMatching(/another passphrase/) });
    flipByte(path.join(inst.paths.backups, old.name));
    expect((await verifySlice(inst, { all: true })).newlyFailed).toMatchObject([{ object: old.name, ok: 0 }]);
  });

  it("an archive retention deletes between slices is dropped, not reported", async () => {
    const { inst } = await instanceWithDocuments(1);
    const a = await writeStoredBackup(inst, { scope: "db", trigger: "manual" });
    await verifySlice(inst);
    fs.rmSync(path.join(inst.paths.backups, a.name));
    const r = await verifySlice(inst);
    expect(r.newlyFailed).toEqual([]);
    expect(verificationRows(inst.db)).toEqual([]);
  });

  it.each([["plain", null], ["recipients-encrypted", "recipients"]] as const)(
    "finds a corrupted, a deleted and a damaged-snapshot object in the bucket (%s)",
    async (_label, mode) => {
      const { inst } = await instanceWithDocuments(3);
      const received = await withWebhook(inst);
      const loc = await s3.location("proof");
      configureOffsite(inst, loc, mode ? { recipients: [generateKey().recipient] } : undefined);
      const job = await runBackupJob(inst, { scope: "full", trigger: "manual" });
      expect(job.offsite).toMatchObject({ ok: true });
      const all = () => verifySlice(inst, { all: true, alertOptions: { backoffMs: [] } });
      const clean = await all();
      expect(clean.offsiteError).toBeNull();
      const remote = clean.checked.filter((c) => c.target === "offsite");
      expect(remote.map((c) => c.kind).sort()).toEqual(["blob", "blob", "blob", "snapshot"]);
      expect(remote.every((c) => c.ok === 1)).toBe(true);

      const blobs = remote.filter((c) => c.kind === "blob").map((c) => c.object);
      const snapshot = remote.find((c) => c.kind === "snapshot")!.object;
      flipByte(s3.objectFile(loc.bucket, `${loc.prefix}/${blobs[0]}`), 0.6);
      fs.rmSync(s3.objectFile(loc.bucket, `${loc.prefix}/${blobs[1]}`));
      fs.rmSync(`${s3.objectFile(loc.bucket, `${loc.prefix}/${blobs[1]}`).replace(/\._S3rver_object$/, "")}._S3rver_metadata.json`, { force: true });
      const found = await all();
      const failed = Object.fromEntries(found.newlyFailed.map((r) => [r.object, r.error]));
      expect(Object.keys(failed).sort()).toEqual([blobs[0], snapshot].sort());
      expect(failed[blobs[0]]).toMatch(mode ? /does not decrypt/ : /does not match its name/);
      expect(failed[snapshot]).toMatch(/needs 1 document file\(s\) the bucket no longer holds/);
      expect(received.filter((a) => a.event === "verify.failed")).toHaveLength(1);
    },
  );
});

describe("restore drills", () => {
  /** Everything of the live instance a drill must not touch, as bytes. */
  function liveState(inst: Instance) {
    const files: Record<string, string> = {};
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else files[path.relative(inst.paths.root, p)] = crypto.createHash("sha256").update(fs.readFileSync(p)).digest("hex");
      }
    };
    for (const d of [inst.paths.vault, inst.paths.backups, path.join(inst.paths.root, "keys")]) walk(d);
    files["settings.yaml"] = crypto.createHash("sha256").update(fs.readFileSync(inst.paths.settings)).digest("hex");
    const rows = ["users", "documents", "audit_log", "backup_runs"].map((t) => inst.db.prepare(`SELECT * FROM ${t} ORDER BY 1`).all());
    return { files, rows: JSON.stringify(rows) };
  }

  it("a drill of a good backup restores it into a scratch directory, checks it, records the recovery time, and leaves the live instance as it was", async () => {
    const { inst } = await instanceWithDocuments(3);
    const backup = await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    const before = liveState(inst);
    const drill = await runDrill(inst, { trigger: "manual" });
    expect(drill).toMatchObject({ status: "success", source: "local", archive: backup.name, error: null });
    expect(drill.seconds).toBeGreaterThan(0);
    const detail = JSON.parse(drill.detail!) as DrillDetail;
    expect(detail).toMatchObject({ documents: 3, accounts: 2, document_files: 3 });
    expect(detail.total_s).toBeGreaterThanOrEqual(drill.seconds!);
    expect(liveState(inst)).toEqual(before);
    expect(fs.readdirSync(inst.paths.tmp)).toEqual([]); // the scratch directory is gone
    expect(healthReport(inst).proof.last_proven_restore).toMatchObject({ source: "local", seconds: drill.seconds });
  });

  it("a drill of a backup damaged after it was written fails and alerts; Health turns degraded; the live instance is untouched", async () => {
    const { inst } = await instanceWithDocuments(3);
    const received = await withWebhook(inst);
    const backup = await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    // The database member sits near the start of the archive (after the meta).
    flipByte(path.join(inst.paths.backups, backup.name), 0.02);
    const before = liveState(inst);
    const drill = await runDrill(inst, { trigger: "manual", alertOptions: { backoffMs: [] } });
    expect(drill.status).toBe("failed");
    expect(drill.archive).toBe(backup.name);
    expect(received.map((a) => a.event)).toEqual(["drill.failed"]);
    expect(received[0].error).toContain(backup.name);
    expect(liveState(inst)).toEqual(before);
    expect(fs.readdirSync(inst.paths.tmp)).toEqual([]);
    expect(healthReasons(inst).map((r) => r.code)).toContain("DRILL_FAILED");
    expect(healthReport(inst).status).toBe("degraded");
  });

  it("with no backup it can open, a drill is skipped with the reason, never passed or failed", async () => {
    const { inst } = await instanceWithDocuments(1);
    expect(await runDrill(inst, { trigger: "manual" })).toMatchObject({ status: "skipped", error: "There is no verified backup to restore yet." });
    const s = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, encryption: { mode: "recipients", recipients: [generateKey().recipient], passphrase: null } } });
    await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    expect((await runDrill(inst, { trigger: "manual" })).error).toMatch(/encrypted to age recipients whose identity Coffer does not hold/);
    expect(recentDrills(inst.db).map((d) => d.status)).toEqual(["skipped", "skipped"]);
  });

  it("a drill that would not fit on the disk is skipped and says so", async () => {
    const { inst } = await instanceWithDocuments(2);
    await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    const drill = await runDrill(inst, { trigger: "manual" });
    expect(drill.status).toBe("success"); // baseline: it fits
    process.env.COFFER_RESTORE_MAX_BYTES = "1000";
    try {
      const small = await runDrill(inst, { trigger: "manual" });
      expect(small.status).toBe("skipped");
      expect(small.error).toMatch(/^Not enough free disk for a drill/);
    } finally {
      delete process.env.COFFER_RESTORE_MAX_BYTES;
    }
  });

  it("drills that keep being skipped make the proof overdue after twice their interval: Health degrades and the webhook hears it once", async () => {
    const { inst } = await instanceWithDocuments(1);
    const received = await withWebhook(inst);
    const s = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, encryption: { mode: "recipients", recipients: [generateKey().recipient], passphrase: null } } });
    await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    let t = Date.now();
    const proof = new ProofJob(() => inst, { now: () => t, log: () => {}, alertOptions: { backoffMs: [] } });
    expect((await proof.tick()).drill?.status).toBe("skipped");
    expect(healthReasons(inst, t).map((r) => r.code)).not.toContain("DRILL_OVERDUE");
    expect(received).toEqual([]);
    t += 15 * DAY;
    expect((await proof.tick()).drill?.status).toBe("skipped");
    expect(healthReasons(inst, t).map((r) => r.code)).toContain("DRILL_OVERDUE");
    expect(received.map((a) => a.event)).toEqual(["drill.overdue"]);
    expect(received[0].error).toMatch(/No restore drill has passed in 14 days.*encrypted to age recipients/);
    t += HOUR;
    await proof.tick();
    expect(received).toHaveLength(1);
  });

  it("the proof job runs a slice each hour and a drill when one is due, and a drill of an offsite-only backup restores from the bucket", async () => {
    const { inst } = await instanceWithDocuments(2);
    const loc = await s3.location("drill");
    configureOffsite(inst, loc);
    const job = await runBackupJob(inst, { scope: "full", trigger: "manual" });
    // Only the bucket has it: the local archive is gone.
    fs.rmSync(path.join(inst.paths.backups, job.local.name));
    let t = Date.now();
    const proof = new ProofJob(() => inst, { now: () => t, log: () => {} });
    const first = await proof.tick();
    expect(first.slice).toBe(true);
    expect(first.drill).toMatchObject({ status: "success", source: "offsite", archive: job.local.name });
    t += 10 * 60 * 1000;
    expect(await proof.tick()).toEqual({ slice: false, drill: null });
    t += HOUR;
    expect((await proof.tick()).slice).toBe(true);
    t += 7 * DAY;
    expect((await proof.tick()).drill?.status).toBe("success");
  });
});
