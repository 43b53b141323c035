import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { makeSetUpInstance } from "../support/instance";
import { currentSettings, parseSettings, saveSettings, updateBackupSettings } from "@/lib/settings/store";
import { createDocument } from "@/lib/vault/documents";
import { stagePointInTime } from "@/lib/continuous/pitr";
import { discardStaged } from "@/lib/backup/restore/staging";
import { continuousPlan, litestreamBinary, replicaWindow } from "@/lib/continuous/litestream";
import { ContinuousSupervisor } from "@/lib/continuous/supervisor";
import { listSettingsVersions, pruneSettingsVersionsFor, recordSettingsVersion, settingsVersionAt, settingsVersionsDir } from "@/lib/continuous/versions";
import type { Instance } from "@/lib/instance";

/**
 * Settings and keys versioned beside the continuous replica, so a point in
 * time restores with its own settings: the real Litestream 0.3.13, real
 * SQLite, the real settings store.
 */
const binary = litestreamBinary();
if (!binary) console.warn("settings-versions.test.ts: SKIPPED the Litestream parts: no Litestream binary");

const DAY = 24 * 3600_000;
const body = (s: string) => Readable.from([Buffer.from(s)]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const wholeSecond = () => new Date(Math.floor(Date.now() / 1000) * 1000);

async function until<T>(what: string, probe: () => T | null | undefined | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function setTrashDays(inst: Instance, days: number): void {
  const s = currentSettings(inst.paths.settings);
  saveSettings(inst.paths.settings, { ...s, trash: { retention_days: days } });
}

const stagedSettings = (inst: Instance, id: string) => parseSettings("staged", fs.readFileSync(path.join(inst.paths.staging, id, "payload", "settings.yaml"), "utf8"));

/** A version file as Coffer writes one, with a valid name for whatever settings text it is given. */
function craftVersion(replica: string, at: Date, settings: string, keys: Buffer[]): string {
  const [secret, config] = keys.map((k) => k.toString("base64"));
  const sha = crypto.createHash("sha256").update(JSON.stringify([settings, secret, config])).digest("hex");
  const file = path.join(settingsVersionsDir(replica), `${at.toISOString().replace(/[-:]/g, "")}-${sha}.json`);
  fs.writeFileSync(file, JSON.stringify({ format: "coffer-settings-version", version: 1, at: at.toISOString(), settings, secret_key: secret, config_key: config }), { mode: 0o600 });
  return file;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe.skipIf(!binary)("a point in time restores with its own settings", () => {
  it("a settings change at T1: a restore to before T1 gets the old settings, after T1 the new; a damaged version is refused", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const sup = new ContinuousSupervisor(() => t.inst, { log: () => {} });
    cleanups.push(() => sup.stop());
    sup.start(200);
    const plan = continuousPlan(t.inst);
    await until("the first snapshot", () => replicaWindow(plan.replica).last);
    // Versioned once when protection starts, before Litestream's first snapshot: the window's first second has settings.
    const [started] = listSettingsVersions(plan.replica);
    expect(started.at.getTime()).toBeLessThanOrEqual(replicaWindow(plan.replica).first!.getTime());
    expect(fs.statSync(started.file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(settingsVersionsDir(plan.replica)).mode & 0o777).toBe(0o700);
    expect(currentSettings(t.inst.paths.settings).trash.retention_days).toBe(30);

    await createDocument(t.inst, t.admin, null, { name: "a.pdf", body: body("a"), maxBytes: 1e6 });
    await sleep(1100);
    const before = wholeSecond();
    await sleep(1100);
    setTrashDays(t.inst, 5); // T1
    const versions = listSettingsVersions(plan.replica);
    expect(versions).toHaveLength(2); // at once, not at the next tick
    const t1 = versions[1];
    expect(t1.at.getTime()).toBeGreaterThan(before.getTime());
    updateBackupSettings(t.inst.paths.settings, () => ({})); // the same content again: no new version
    await sleep(500); // ticks find nothing new either
    expect(listSettingsVersions(plan.replica)).toHaveLength(2);
    await sleep(1100);
    const after = wholeSecond();
    expect(after.getTime()).toBeGreaterThan(t1.at.getTime());
    await sleep(1100);
    await createDocument(t.inst, t.admin, null, { name: "b.pdf", body: body("b"), maxBytes: 1e6 }); // the replica's newest second passes `after`
    await until("the replica to pass T1", () => (replicaWindow(plan.replica).last!.getTime() >= after.getTime() ? true : null), 5000);
    await sup.pause();

    const old = await stagePointInTime(t.inst, before);
    expect(stagedSettings(t.inst, old.id).trash.retention_days).toBe(30);
    expect(old.warnings[0]).toMatch(/the settings and keys in effect then \(kept since /);
    expect(old.changes?.settings.sections).toEqual(["trash.retention_days"]);
    discardStaged(t.inst, old.id);
    const now = await stagePointInTime(t.inst, after);
    expect(stagedSettings(t.inst, now.id).trash.retention_days).toBe(5);
    expect(now.changes?.settings).toEqual({ differ: false, sections: [] });
    discardStaged(t.inst, now.id);

    // One byte of the version after T1 changed on disk (still valid settings): refused, naming the file; nothing is staged.
    const good = fs.readFileSync(t1.file, "utf8");
    expect(good).toContain("retention_days: 5");
    fs.writeFileSync(t1.file, good.replace("retention_days: 5", "retention_days: 7"));
    const err = await stagePointInTime(t.inst, after).catch((e) => e);
    expect(err).toMatchObject({ status: 422, code: "CONTINUOUS_SETTINGS_DAMAGED" });
    expect(err.message).toContain(path.basename(t1.file));
    expect(err.message).toMatch(/does not match the SHA-256 in its name/);
    expect(fs.readdirSync(t.inst.paths.staging)).toEqual([]);
    // A version whose name fits its content but whose settings the app's schema refuses: refused too, not restored.
    fs.rmSync(t1.file);
    const keys = [fs.readFileSync(t.inst.paths.secretKey), fs.readFileSync(t.inst.paths.configKey)];
    craftVersion(plan.replica, t1.at, "trash:\n  retention_days: -1\n", keys);
    await expect(stagePointInTime(t.inst, after)).rejects.toMatchObject({ code: "CONTINUOUS_SETTINGS_DAMAGED", message: expect.stringMatching(/its settings.yaml is not valid .*trash.retention_days/) });
    // No version that old at all (a replica from before versions were kept): today's, and the preview says so.
    fs.rmSync(settingsVersionsDir(plan.replica), { recursive: true });
    const today = await stagePointInTime(t.inst, before);
    expect(today.warnings[0]).toMatch(/settings and keys are the current ones \(none were kept from that time\)/);
    expect(stagedSettings(t.inst, today.id).trash.retention_days).toBe(5);
    discardStaged(t.inst, today.id);

    // A hand edit while Litestream runs: a tick versions it, dated by the edit.
    sup.resume();
    await until("Litestream again", () => sup.status().running);
    await until("the current settings versioned again", () => listSettingsVersions(plan.replica).length === 1);
    const edited = Date.now();
    fs.writeFileSync(t.inst.paths.settings, fs.readFileSync(t.inst.paths.settings, "utf8").replace("retention_days: 5", "retention_days: 9"));
    const hand = await until("the hand edit to be versioned", () => listSettingsVersions(plan.replica)[1], 3000);
    expect(Math.abs(hand.at.getTime() - edited)).toBeLessThan(1000);
    // A broken edit is not versioned: the previous settings stay in force, as the app keeps them.
    fs.writeFileSync(t.inst.paths.settings, "trash: [\n");
    await sleep(600);
    expect(listSettingsVersions(plan.replica)).toHaveLength(2);
  }, 90_000);
});

describe("settings versions are pruned only after the window has passed", () => {
  it("keeps every version the window needs, and the newest one from before it so its first second has settings", async () => {
    const t = await makeSetUpInstance();
    cleanups.push(t.cleanup);
    const plan = continuousPlan(t.inst);
    expect(plan.windowDays).toBe(7);
    const now = Date.now();
    // The replica reaches further back than the window (Litestream keeps a day more): that second needs its settings too.
    const snapshots = path.join(plan.replica, "generations", "0123456789abcdef", "snapshots");
    fs.mkdirSync(snapshots, { recursive: true });
    const snapshot = path.join(snapshots, "00000000.snapshot.lz4");
    fs.writeFileSync(snapshot, "");
    fs.utimesSync(snapshot, new Date(now - 9.5 * DAY), new Date(now - 9.5 * DAY));

    const days = [-20, -10, -8, -3, -1];
    for (const [i, d] of days.entries()) {
      setTrashDays(t.inst, i + 1);
      expect(recordSettingsVersion(t.inst, { now: now + d * DAY })?.at.getTime()).toBe(now + d * DAY);
    }
    const at = () => listSettingsVersions(plan.replica).map((v) => Math.round((v.at.getTime() - now) / DAY));
    expect(at()).toEqual([-10, -8, -3, -1]); // -20 went; -10 is in effect at the replica's first second
    expect(settingsVersionAt(plan.replica, new Date(now - 9.5 * DAY))!.at.getTime()).toBe(now - 10 * DAY);
    expect(settingsVersionAt(plan.replica, new Date(now - 30 * DAY))).toBeNull();

    fs.rmSync(path.join(plan.replica, "generations"), { recursive: true });
    expect(pruneSettingsVersionsFor(t.inst, now)).toBe(1);
    expect(at()).toEqual([-8, -3, -1]); // the window's start is now - 7 days: -8 is in effect then
    expect(settingsVersionAt(plan.replica, new Date(now - 7 * DAY))!.at.getTime()).toBe(now - 8 * DAY);
    expect(pruneSettingsVersionsFor(t.inst, now)).toBe(0);
    // The same content as the newest is not a new version.
    expect(recordSettingsVersion(t.inst, { now })).toBeNull();
  });
});
