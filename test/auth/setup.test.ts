import fs from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { ensureSetupCode, requireSetupCode, completeNewSetup, SETUP_CODE_LIMIT } from "@/lib/auth/setup";
import { isSetupComplete } from "@/lib/instance";
import { AppError } from "@/lib/errors";
import { makeInstance } from "../support/instance";
import { currentSettings } from "@/lib/settings/store";
import { BackupScheduler } from "@/lib/backup/jobs/scheduler";
import { generateKey } from "@/lib/crypto/age";
import { decryptSecret } from "@/lib/settings/secrets";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));
function instance() {
  const t = makeInstance();
  cleanups.push(t.cleanup);
  return t.inst;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof AppError ? `${e.status} ${e.code}` : String(e);
  }
  return undefined;
}

describe("setup state", () => {
  it("makes a setup code while pending, stored 0600, stable across restarts", () => {
    const inst = instance();
    const code = ensureSetupCode(inst, {})!;
    expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    expect((fs.statSync(inst.paths.setupToken).mode & 0o777).toString(8)).toBe("600");
    expect(ensureSetupCode(inst, {})).toBe(code);
  });

  it("COFFER_SETUP_TOKEN presets the code", () => {
    const inst = instance();
    expect(ensureSetupCode(inst, { COFFER_SETUP_TOKEN: "PRESET-CODE-1234" })).toBe("PRESET-CODE-1234");
    expect(codeOf(() => requireSetupCode(inst, "PRESET-CODE-1234", "10.0.0.1"))).toBeUndefined();
    // Case and dashes do not matter to a person typing it.
    expect(codeOf(() => requireSetupCode(inst, "preset code 1234", "10.0.0.1"))).toBeUndefined();
  });

  it("rejects a wrong code and rate-limits guessing per address", () => {
    const inst = instance();
    ensureSetupCode(inst, {});
    const ip = `198.51.100.${Math.floor(Math.random() * 200)}`;
    for (let i = 0; i < SETUP_CODE_LIMIT.max; i++) expect(codeOf(() => requireSetupCode(inst, "AAAA-AAAA-AAAA", ip))).toBe("401 BAD_SETUP_CODE");
    expect(codeOf(() => requireSetupCode(inst, "AAAA-AAAA-AAAA", ip))).toBe("429 RATE_LIMITED");
    // Another address is not punished for it.
    expect(codeOf(() => requireSetupCode(inst, "AAAA-AAAA-AAAA", "203.0.113.9"))).toBe("401 BAD_SETUP_CODE");
  });

  it("goes pending → complete, retires the code, and answers 403 after", async () => {
    const inst = instance();
    const token = ensureSetupCode(inst, {})!;
    expect(isSetupComplete(inst)).toBe(false);
    const admin = await completeNewSetup(inst, { token, instance_name: "Home", username: "root", password: "0123456789" }, null);
    expect(admin.role).toBe("admin");
    expect(isSetupComplete(inst)).toBe(true);
    expect(fs.existsSync(inst.paths.setupToken)).toBe(false);
    expect(codeOf(() => requireSetupCode(inst, token, null))).toBe("403 SETUP_COMPLETE");
    await expect(
      completeNewSetup(inst, { token, instance_name: "Again", username: "other", password: "0123456789" }, null),
    ).rejects.toMatchObject({ status: 403, code: "SETUP_COMPLETE" });
    expect(ensureSetupCode(inst, { COFFER_SETUP_TOKEN: "X" })).toBeNull();
    const actions = inst.db.prepare("SELECT action FROM audit_log ORDER BY id").pluck().all();
    expect(actions).toContain("setup.complete");
  });

  it("two racing New setups: exactly one wins", async () => {
    const inst = instance();
    const token = ensureSetupCode(inst, {})!;
    const results = await Promise.allSettled([
      completeNewSetup(inst, { token, instance_name: "A", username: "a1", password: "0123456789" }, null),
      completeNewSetup(inst, { token, instance_name: "B", username: "b1", password: "0123456789" }, null),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(inst.db.prepare("SELECT count(*) FROM users").pluck().get()).toBe(1);
  });
});

describe("protection on by default", () => {
  it("New setup turns on daily 03:00 backups in the admin's time zone with GFS retention, and the scheduler runs them", async () => {
    const { inst, cleanup } = makeInstance();
    cleanups.push(cleanup);
    const token = ensureSetupCode(inst, {})!;
    await completeNewSetup(inst, { token, instance_name: "Home", username: "root", password: "0123456789", backup: { time_zone: "Europe/Berlin" } }, null);
    const job = currentSettings(inst.paths.settings).backup;
    expect(job).toMatchObject({ enabled: true, schedule: "0 3 * * *", time_zone: "Europe/Berlin", retention: { mode: "gfs", gfs: { daily: 7, weekly: 4, monthly: 6 } } });
    // 03:00 in Berlin is 02:00 UTC in winter.
    let now = Date.parse("2026-11-24T01:30:00Z");
    const scheduler = new BackupScheduler(() => inst, { now: () => now, log: () => {} });
    expect(await scheduler.tick()).toBe("idle");
    now = Date.parse("2026-11-24T02:00:30Z");
    expect(await scheduler.tick()).toBe("ran");
    expect(inst.db.prepare("SELECT count(*) FROM backup_runs WHERE trigger = 'schedule' AND status = 'success'").pluck().get()).toBe(1);
  });

  it("an unattended POST /api/setup gets the same defaults (UTC), can turn them off, and a bad time zone is refused before anything changes", async () => {
    const a = makeInstance();
    cleanups.push(a.cleanup);
    await completeNewSetup(a.inst, { token: ensureSetupCode(a.inst, {})!, instance_name: "A", username: "root", password: "0123456789" }, null);
    expect(currentSettings(a.inst.paths.settings).backup).toMatchObject({ enabled: true, schedule: "0 3 * * *", time_zone: "UTC" });

    const b = makeInstance();
    cleanups.push(b.cleanup);
    await completeNewSetup(b.inst, { token: ensureSetupCode(b.inst, {})!, instance_name: "B", username: "root", password: "0123456789", backup: { enabled: false } }, null);
    expect(currentSettings(b.inst.paths.settings).backup.enabled).toBe(false);

    const c = makeInstance();
    cleanups.push(c.cleanup);
    const err = await completeNewSetup(c.inst, { token: ensureSetupCode(c.inst, {})!, instance_name: "C", username: "root", password: "0123456789", backup: { time_zone: "Mars/Olympus" } }, null).catch((e) => e);
    expect(err.issues?.[0]).toMatchObject({ path: ["backup", "time_zone"] });
    expect(isSetupComplete(c.inst)).toBe(false);
  });

  it("New setup can send backups to a bucket from the start: the connection is saved with its secret encrypted", async () => {
    const a = makeInstance();
    cleanups.push(a.cleanup);
    const offsite = { endpoint: "https://s3.example.com", bucket: "family-backups", prefix: "/home/", access_key_id: "KEYID", secret_access_key: "s3cret-value" };
    await completeNewSetup(a.inst, { token: ensureSetupCode(a.inst, {})!, instance_name: "A", username: "root", password: "0123456789", backup: { offsite } }, null);
    const saved = currentSettings(a.inst.paths.settings).backup.offsite;
    expect(saved).toMatchObject({ enabled: true, endpoint: "https://s3.example.com", bucket: "family-backups", prefix: "home", path_style: true, access_key_id: "KEYID", checksum_compat: true });
    expect(saved.secret_access_key).toMatch(/^enc:v1:/);
    expect(decryptSecret(a.inst.configKey, saved.secret_access_key!)).toBe("s3cret-value");
    expect(fs.readFileSync(a.inst.paths.settings, "utf8")).not.toContain("s3cret-value");
  });

  it("New setup can encrypt backups from the start for the recipient the wizard made; a recipient with a bad checksum is refused", async () => {
    const key = generateKey();
    const a = makeInstance();
    cleanups.push(a.cleanup);
    await completeNewSetup(a.inst, { token: ensureSetupCode(a.inst, {})!, instance_name: "A", username: "root", password: "0123456789", backup: { encryption_recipients: [key.recipient] } }, null);
    expect(currentSettings(a.inst.paths.settings).backup.encryption).toEqual({ mode: "recipients", recipients: [key.recipient], passphrase: null });

    const b = makeInstance();
    cleanups.push(b.cleanup);
    const typo = key.recipient.slice(0, -1) + (key.recipient.endsWith("q") ? "p" : "q");
    const err = await completeNewSetup(b.inst, { token: ensureSetupCode(b.inst, {})!, instance_name: "B", username: "root", password: "0123456789", backup: { encryption_recipients: [typo] } }, null).catch((e) => e);
    expect(err.issues?.[0]).toMatchObject({ path: ["backup", "encryption_recipients", 0], message: "This age recipient has a bad checksum (a typo?)." });
    expect(isSetupComplete(b.inst)).toBe(false);
  });
});
