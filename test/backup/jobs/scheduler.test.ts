import fs from "node:fs";
import os from "node:os";
import { spawnSync } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BackupScheduler } from "@/lib/backup/jobs/scheduler";
import { tryLock } from "@/lib/lock";
import { writeStoredBackup } from "@/lib/backup/local/stored";
import { archiveNameDate } from "@/lib/backup/format/tables";
import { currentSettings, saveSettings, settingsProblem } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import { openInstance, closeInstance, type Instance } from "@/lib/instance";
import { makeSetUpInstance } from "../../support/instance";

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setUp(job: Partial<ReturnType<typeof currentSettings>["backup"]>) {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  const s = currentSettings(t.inst.paths.settings);
  saveSettings(t.inst.paths.settings, { ...s, backup: { ...s.backup, enabled: true, ...job } });
  return t;
}

function clockAt(iso: string) {
  let t = Date.parse(iso);
  return { now: () => t, set: (s: string) => (t = Date.parse(s)), advance: (ms: number) => (t += ms) };
}

const scheduledRuns = (inst: Instance) => inst.db.prepare("SELECT count(*) FROM backup_runs WHERE trigger = 'schedule' AND status = 'success'").pluck().get() as number;
const quiet = { log: () => {} };

describe("scheduler", () => {
  it("runs once per cron slot, and exactly one catch-up after three missed slots", async () => {
    const { inst } = await setUp({ schedule: "0 * * * *", time_zone: "UTC" });
    const clock = clockAt("2026-11-22T10:05:00Z");
    const s = new BackupScheduler(() => inst, { now: clock.now, ...quiet });
    expect(await s.tick()).toBe("idle"); // a new schedule starts from now: 10:00 was never promised
    clock.set("2026-11-22T10:59:00Z");
    expect(await s.tick()).toBe("idle");
    clock.set("2026-11-22T11:00:30Z");
    expect(await s.tick()).toBe("ran");
    expect(await s.tick()).toBe("idle");
    // Down from 11:01 to 14:30: the 12:00, 13:00 and 14:00 slots were missed.
    clock.set("2026-11-22T14:30:00Z");
    expect(await s.tick()).toBe("ran");
    clock.set("2026-11-22T14:45:00Z");
    expect(await s.tick()).toBe("idle");
    expect(scheduledRuns(inst)).toBe(2);
  });

  it("an edited cron takes effect: the old one's slots stop, the new one's start from the edit", async () => {
    const { inst } = await setUp({ schedule: "0 3 * * *", time_zone: "UTC" });
    const clock = clockAt("2026-11-22T10:05:00Z");
    const s = new BackupScheduler(() => inst, { now: clock.now, ...quiet });
    expect(await s.tick()).toBe("idle");
    const cur = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...cur, backup: { ...cur.backup, schedule: "*/10 * * * *" } });
    clock.set("2026-11-22T10:06:00Z");
    expect(await s.tick()).toBe("idle"); // 10:00 was before the edit
    clock.set("2026-11-22T10:10:30Z");
    expect(await s.tick()).toBe("ran");
    expect(scheduledRuns(inst)).toBe(1);
  });

  it("interval schedules run once per interval since the last success", async () => {
    const { inst } = await setUp({ schedule: "hourly" });
    const s = new BackupScheduler(() => inst, { ...quiet });
    expect(await s.tick()).toBe("ran"); // never backed up: due now
    expect(await s.tick()).toBe("idle");
    const later = new BackupScheduler(() => inst, { now: () => Date.now() + 61 * 60 * 1000, ...quiet });
    expect(await later.tick()).toBe("ran");
    expect(scheduledRuns(inst)).toBe(2);
  });

  it("no overlap when a run outlasts its interval, in one process or two", async () => {
    const { inst } = await setUp({ schedule: "hourly" });
    const other = openInstance(inst.paths.root); // a second connection: another process's view
    cleanups.push(() => closeInstance(other));
    const clock = clockAt(new Date().toISOString());
    const a = new BackupScheduler(() => inst, { now: clock.now, ...quiet });
    const b = new BackupScheduler(() => other, { now: clock.now, ...quiet });
    const first = a.tick();
    clock.advance(2 * 3600 * 1000); // the run is still going when the next interval is due
    expect(await a.tick()).toBe("busy");
    expect(await b.tick()).toBe("busy");
    expect(await first).toBe("ran");
    expect(scheduledRuns(inst)).toBe(1);
  });

  it("two schedulers on one database produce one run per slot", async () => {
    const { inst } = await setUp({ schedule: "*/5 * * * *", time_zone: "UTC" });
    const other = openInstance(inst.paths.root);
    cleanups.push(() => closeInstance(other));
    const clock = clockAt("2026-11-22T10:01:00Z");
    const a = new BackupScheduler(() => inst, { now: clock.now, ...quiet });
    const b = new BackupScheduler(() => other, { now: clock.now, ...quiet });
    await Promise.all([a.tick(), b.tick()]);
    for (let slot = 1; slot <= 5; slot++) {
      clock.set(`2026-11-22T10:${String(slot * 5).padStart(2, "0")}:10Z`);
      const results = await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
      expect(results.filter((r) => r === "ran")).toHaveLength(1);
    }
    expect(scheduledRuns(inst)).toBe(5);
  });

  it("the instance lock: a live holder keeps the scheduler out, a dead one is taken over at once, and a holder that lost it cannot finalize", async () => {
    const { inst } = await setUp({ schedule: "hourly" });
    const s = new BackupScheduler(() => inst, { ...quiet });
    const restore = tryLock(inst.paths.root, "restore")!;
    expect(await s.tick()).toBe("busy");
    restore.release();
    // A `coffer backup` killed mid-run: its lock file stays, its process is gone.
    const dead = Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString());
    fs.writeFileSync(inst.paths.lock, JSON.stringify({ pid: dead, purpose: "backup (cli)", since: new Date().toISOString(), host: os.hostname(), start: null, token: "dead" }));
    expect(await s.tick()).toBe("ran");
    expect(fs.existsSync(inst.paths.lock)).toBe(false);
    // A holder whose lock was judged stale and taken over must not finalize its archive.
    const mine = tryLock(inst.paths.root, "backup (manual)")!;
    fs.rmSync(inst.paths.lock);
    const other = tryLock(inst.paths.root, "backup (cli)")!;
    const before = fs.readdirSync(inst.paths.backups);
    await expect(writeStoredBackup(inst, { scope: "db", trigger: "manual", lock: mine })).rejects.toThrow(/lock was lost/);
    expect(fs.readdirSync(inst.paths.backups)).toEqual(before);
    expect(other.held()).toBe(true);
    other.release();
  });

  it.each([
    ["spring", "2026-03-26T12:00:00Z", 6],
    ["autumn", "2026-10-22T12:00:00Z", 6],
  ])("a daily 02:30 cron in Europe/Berlin runs once per day across the %s transition", async (_n, start, daysToRun) => {
    const { inst } = await setUp({ schedule: "30 2 * * *", time_zone: "Europe/Berlin", retention: { mode: "count", count: 50, days: 30, gfs: { latest: 10, hourly: 24, daily: 7, weekly: 4, monthly: 6 } } });
    const clock = clockAt(start);
    const runsAt: number[] = [];
    const s = new BackupScheduler(() => inst, { now: clock.now, ...quiet });
    const end = clock.now() + daysToRun * 24 * 3600 * 1000;
    while (clock.now() < end) {
      if ((await s.tick()) === "ran") runsAt.push(clock.now());
      clock.advance(10 * 60 * 1000);
    }
    const berlinDays = runsAt.map((t) => new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Berlin" }).format(t));
    expect(new Set(berlinDays).size).toBe(berlinDays.length); // never twice a day
    expect(runsAt).toHaveLength(daysToRun);
  });

  it("a hand edit of settings.yaml changes the schedule without a restart; a broken edit keeps the old one", async () => {
    const { inst } = await setUp({ enabled: false, schedule: "daily" });
    const s = new BackupScheduler(() => inst, { ...quiet });
    expect(await s.tick()).toBe("disabled");
    const file = inst.paths.settings;
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("enabled: false", "enabled: true").replace("schedule: daily", "schedule: hourly"));
    expect(await s.tick()).toBe("ran");
    fs.writeFileSync(file, "backup: [this is not yaml\n");
    expect(await s.tick()).toBe("idle"); // still enabled and hourly: just ran
    expect(currentSettings(file).backup.schedule).toBe("hourly");
    expect(settingsProblem(file)).toMatch(/not valid YAML/);
  });

  it("retention runs after a verified scheduled backup and only then", async () => {
    const { inst } = await setUp({ schedule: "hourly", retention: { mode: "count", count: 2, days: 30, gfs: { latest: 10, hourly: 24, daily: 7, weekly: 4, monthly: 6 } } });
    fs.writeFileSync(path.join(inst.paths.backups, "keep-me.txt"), "not an archive");
    let t = Date.now();
    const s = new BackupScheduler(() => inst, { now: () => t, ...quiet });
    for (let i = 0; i < 4; i++) {
      expect(await s.tick()).toBe("ran");
      t += 61 * 60 * 1000; // the scheduler's clock names the archives: distinct without waiting
    }
    const left = fs.readdirSync(inst.paths.backups).sort();
    expect(left.filter((n) => n.startsWith("coffer_"))).toHaveLength(2);
    // The scheduler's clock reaches the runner: the newest archive is named for the last tick's time.
    expect(archiveNameDate(left.filter((n) => n.startsWith("coffer_")).pop()!)?.getTime()).toBe(Math.floor((t - 61 * 60 * 1000) / 1000) * 1000);
    expect(left).toContain("keep-me.txt");
    expect(inst.db.prepare("SELECT count(*) FROM audit_log WHERE action = 'backup.prune'").pluck().get()).toBe(2);
  });
});

describe("alerts", () => {
  it("a failed run and stale backups POST a JSON payload to the webhook", async () => {
    const received: Record<string, unknown>[] = [];
    let failFirst = true;
    const server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        // The first delivery fails: the alert is retried.
        if (failFirst) {
          failFirst = false;
          res.writeHead(503).end();
          return;
        }
        received.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;

    const { inst } = await setUp({ schedule: "hourly", directory: "/definitely/outside/the/roots" });
    const s0 = currentSettings(inst.paths.settings);
    saveSettings(inst.paths.settings, { ...s0, backup: { ...s0.backup, notify: { webhook_url: encryptSecret(inst.configKey, url) } } });
    const clock = clockAt(new Date().toISOString());
    const s = new BackupScheduler(() => inst, { now: clock.now, alertOptions: { backoffMs: [10, 10] }, ...quiet });
    expect(await s.tick()).toBe("failed");
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ instance: "Test", event: "backup.failed", last_success: null });
    expect(String(received[0].error)).toMatch(/outside the data directory/);
    expect(Date.parse(String(received[0].time))).toBeGreaterThan(0);

    // Two hours and more with no success: stale, alerted once.
    clock.advance(2 * 3600 * 1000 + 60_000);
    await s.tick();
    await s.tick();
    const stale = received.filter((r) => r.event === "backup.stale");
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatchObject({ instance: "Test", last_success: null });
  });
});
