import fs from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { healthReport } from "@/lib/health";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { startRun, finishRun } from "@/lib/backup/runs";
import { setMeta } from "@/lib/db/connection";
import { generateKey } from "@/lib/crypto/age";
import { makeInstance, makeSetUpInstance } from "./support/instance";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const RECIPIENT = generateKey().recipient;

async function scheduled() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  const s = currentSettings(t.inst.paths.settings);
  saveSettings(t.inst.paths.settings, {
    ...s,
    // Continuous protection's health is test/continuous.test.ts's: off here, so these hold where Litestream is not installed.
    backup: { ...s.backup, enabled: true, schedule: "daily", encryption: { mode: "recipients", recipients: [RECIPIENT], passphrase: null }, offsite: OFFSITE, continuous: { ...s.backup.continuous, enabled: false } },
  });
  return t;
}

const OFFSITE = {
  enabled: true,
  endpoint: "https://s3.example.com",
  region: "us-east-1",
  bucket: "coffer",
  prefix: "home",
  path_style: true,
  access_key_id: "KEY",
  secret_access_key: "enc:v1:placeholder",
  checksum_compat: true,
};

const codes = (r: ReturnType<typeof healthReport>) => r.reasons.map((x) => x.code);
let clock = Date.now();
const later = () => (clock += 20_000); // past the quick-check cache

describe("health", () => {
  it("is ok for an instance waiting for setup, and for one backed up on schedule", async () => {
    const fresh = makeInstance();
    cleanups.push(fresh.cleanup);
    expect(healthReport(fresh.inst, later())).toMatchObject({ status: "ok", reasons: [], setup: "required" });
    const { inst } = await scheduled();
    finishRun(inst.db, startRun(inst.db, "schedule", "full"), { status: "success", file: "x", verified: true });
    expect(healthReport(inst, later())).toMatchObject({ status: "ok", reasons: [] });
  });

  it("is degraded, with the reason, when backups are off, failed or stale", async () => {
    const { inst } = await scheduled();
    const s = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, enabled: false } });
    expect(healthReport(inst, later())).toMatchObject({ status: "degraded" });
    expect(codes(healthReport(inst, later()))).toEqual(["BACKUPS_OFF"]);
    saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, enabled: true } });
    finishRun(inst.db, startRun(inst.db, "schedule", "full"), { status: "failed", error: "disk full" });
    const failed = healthReport(inst, later());
    expect(failed.status).toBe("degraded");
    expect(codes(failed)).toEqual(["BACKUP_FAILED"]);
    expect(JSON.stringify(failed)).not.toContain("disk full"); // anonymous callers get no details
    // Enabled (the scheduler records when), then three days without a success on a daily schedule.
    setMeta(inst.db, "schedule_enabled_at", String(Date.now()));
    expect(codes(healthReport(inst, Date.now() + 3 * 24 * 3600 * 1000))).toEqual(expect.arrayContaining(["BACKUPS_STALE"]));
  });

  it("warns while backups are unencrypted", async () => {
    const { inst } = await scheduled();
    finishRun(inst.db, startRun(inst.db, "schedule", "full"), { status: "success", file: "x", verified: true });
    const s = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, encryption: { mode: "off", recipients: [], passphrase: null } } });
    const r = healthReport(inst, later());
    expect(r.status).toBe("degraded");
    expect(r.reasons).toMatchObject([{ code: "BACKUPS_UNENCRYPTED", message: "Backups hold every document and key in clear." }]);
  });

  it("warns while backups stay on this server, and when the last offsite copy failed", async () => {
    const { inst } = await scheduled();
    finishRun(inst.db, startRun(inst.db, "schedule", "full"), { status: "success", file: "x", verified: true });
    const s = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...s, backup: { ...s.backup, offsite: { ...OFFSITE, enabled: false } } });
    expect(healthReport(inst, later()).reasons).toMatchObject([{ code: "OFFSITE_OFF", fix: "/settings/backup/offsite" }]);
    saveSettings(inst.paths.settings, s);
    finishRun(inst.db, startRun(inst.db, "schedule", "full", "offsite"), { status: "failed", error: "Offsite: the bucket was gone" });
    const r = healthReport(inst, later());
    expect(codes(r)).toEqual(["OFFSITE_FAILED"]);
    expect(r.backup.offsite).toMatchObject({ enabled: true, last_status: "failed", last_success_at: null });
    expect(JSON.stringify(r)).not.toContain("bucket was gone");
    // A failed offsite part does not make the local backup look failed.
    expect(r.backup.last_status).toBe("success");
  });

  it("is failing when a quick check fails (a key file damaged on disk)", async () => {
    const { inst } = await scheduled();
    finishRun(inst.db, startRun(inst.db, "schedule", "full"), { status: "success", file: "x", verified: true });
    fs.writeFileSync(inst.paths.configKey, "short");
    const r = healthReport(inst, later());
    expect(r.status).toBe("failing");
    expect(r.reasons[0]).toMatchObject({ level: "fail", code: "CHECK_KEYS" });
  });
});
