import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../instance";
import { getMeta, setMeta } from "../db/connection";
import { currentSettings } from "../settings/store";
import { audit } from "../audit/log";
import { tryAcquireLease, type Lease } from "./lease";
import { BACKUP_LEASE, resolveBackupDir, writeStoredBackup } from "./store";
import { lastSuccess, verifiedFiles } from "./runs";
import { isArchiveName } from "./format";
import { planRetention, type RetentionPolicy } from "./retention";
import { parseSchedule, latestSlot, nextRuns, stalePeriodMs, type ParsedSchedule } from "./schedule";
import { alert, type SendOptions } from "./alerts";
import { fsyncDir } from "../util/fsatomic";
import { lastDoctorReport, runDoctor } from "../doctor";

/** After a failed run, wait this long (or the interval, if shorter) before trying again. */
const RETRY_MS = 10 * 60 * 1000;
const LEASE_TTL_MS = 60_000;
const DEEP_CHECK_EVERY_MS = 7 * 24 * 3600 * 1000;

export type TickResult = "disabled" | "idle" | "busy" | "ran" | "failed" | "invalid";

export interface SchedulerOptions {
  now?: () => number;
  alertOptions?: SendOptions;
  log?: (line: string) => void;
}

export interface ScheduleStatus {
  enabled: boolean;
  next: number[];
  lastSuccessAt: string | null;
  stale: boolean;
  error: string | null;
}

function jobKey(schedule: string, tz: string): string {
  return `${schedule.trim()}|${tz}`;
}

/** What the job will do next, and whether backups have gone stale (for Settings and /api/health). */
export function scheduleStatus(inst: Instance, now: number): ScheduleStatus {
  const job = currentSettings(inst.paths.settings).backup;
  const last = lastSuccess(inst.db);
  const lastMs = last?.finished_at ? Date.parse(last.finished_at) : null;
  let parsed: ParsedSchedule;
  try {
    parsed = parseSchedule(job.schedule, job.time_zone);
  } catch (err) {
    return { enabled: job.enabled, next: [], lastSuccessAt: last?.finished_at ?? null, stale: false, error: (err as Error).message };
  }
  const enabledAt = Number(getMeta(inst.db, "schedule_enabled_at") || now);
  const since = lastMs ?? enabledAt;
  return {
    enabled: job.enabled,
    next: job.enabled ? nextRuns(parsed, lastMs, now) : [],
    lastSuccessAt: last?.finished_at ?? null,
    stale: job.enabled && now - since > stalePeriodMs(parsed, now),
    error: null,
  };
}

/** Delete what retention says may go; the lease is checked before each deletion. */
export function pruneBackups(inst: Instance, dir: string, policy: RetentionPolicy, lease: Lease, now: Date, log: (l: string) => void = console.log): string[] {
  const verified = verifiedFiles(inst.db);
  const files = fs
    .readdirSync(dir)
    .filter((n) => isArchiveName(n) && fs.lstatSync(path.join(dir, n)).isFile())
    .map((name) => ({ name, verified: verified.get(name) === true }));
  const { prune } = planRetention(files, policy, now);
  const pruned: string[] = [];
  for (const name of prune) {
    if (!lease.held()) break;
    fs.rmSync(path.join(dir, name), { force: true });
    pruned.push(name);
    log(`Pruned backup ${name}`);
    audit(inst.db, { id: null, name: "scheduler" }, "backup.prune", name, { mode: policy.mode });
  }
  if (pruned.length) fsyncDir(dir);
  return pruned;
}

/**
 * Decides, each tick, whether the configured job is due; runs it under the
 * backup lease; prunes after a verified success; alerts on failure and
 * staleness. Reads settings on every tick, so saves and hand edits take
 * effect without a restart (a run in progress finishes first).
 */
export class BackupScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<TickResult> | null = null;
  private readonly now: () => number;
  private readonly log: (line: string) => void;

  constructor(
    private readonly instance: () => Instance | null,
    private readonly opts: SchedulerOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? ((l) => console.log(`Coffer: ${l}`));
  }

  start(tickMs = 15_000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), tickMs);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Waits for a run in progress, if any. */
  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /** One decision. Never rejects: a scheduler that throws would take the server down with it. */
  tick(): Promise<TickResult> {
    if (this.running) return Promise.resolve("busy");
    this.running = this.tickOnce()
      .catch((err: Error) => {
        this.log(`scheduler error: ${err.message}`);
        return "failed" as const;
      })
      .finally(() => (this.running = null));
    return this.running;
  }

  status(inst: Instance): ScheduleStatus {
    return scheduleStatus(inst, this.now());
  }

  private async tickOnce(): Promise<TickResult> {
    const inst = this.instance();
    if (!inst) return "idle";
    const job = currentSettings(inst.paths.settings).backup;
    const now = this.now();
    this.weeklyDeepCheck(inst, now);
    if (!job.enabled) {
      // Only on the change: an idle scheduler must not write every tick.
      if (getMeta(inst.db, "schedule_enabled_at")) setMeta(inst.db, "schedule_enabled_at", "");
      return "disabled";
    }
    if (!getMeta(inst.db, "schedule_enabled_at")) setMeta(inst.db, "schedule_enabled_at", String(now));
    let parsed: ParsedSchedule;
    try {
      parsed = parseSchedule(job.schedule, job.time_zone);
    } catch {
      return "invalid";
    }
    await this.checkStale(inst, parsed, now);
    if (!this.due(inst, parsed, job.schedule, job.time_zone, now, false)) return "idle";

    const lease = tryAcquireLease(inst.db, BACKUP_LEASE, LEASE_TTL_MS, this.now);
    if (!lease) return "busy";
    try {
      // Claimed inside the lease: another process may have just run this slot.
      if (!inst.db.transaction(() => this.due(inst, parsed, job.schedule, job.time_zone, now, true))()) return "idle";
      setMeta(inst.db, "schedule_last_attempt", String(now));
      let dir: string;
      try {
        dir = resolveBackupDir(inst, job.directory);
        const r = await writeStoredBackup(inst, { scope: job.scope, trigger: "schedule", lease, dir });
        if (!r.verified) throw new Error(`${r.name} did not verify`);
        pruneBackups(inst, dir, job.retention, lease, new Date(this.now()), this.log);
        return "ran";
      } catch (err) {
        const message = (err as Error).message;
        this.log(`scheduled backup failed: ${message}`);
        await alert(inst, "backup.failed", message, lastSuccess(inst.db)?.finished_at ?? null, this.opts.alertOptions);
        return "failed";
      }
    } finally {
      lease.release();
    }
  }

  /** Is a run due? With claim=true (inside a transaction) the cron slot is recorded as taken. */
  private due(inst: Instance, s: ParsedSchedule, schedule: string, tz: string, now: number, claim: boolean): boolean {
    const lastAttempt = Number(getMeta(inst.db, "schedule_last_attempt") ?? 0);
    if (s.kind === "interval") {
      const last = lastSuccess(inst.db);
      const lastMs = last?.finished_at ? Date.parse(last.finished_at) : null;
      if (lastMs !== null && now < lastMs + s.ms) return false;
      return now - lastAttempt >= Math.min(s.ms, RETRY_MS);
    }
    const slot = latestSlot(s, now);
    if (slot === null) return false;
    const key = jobKey(schedule, tz);
    if (getMeta(inst.db, "schedule_job") !== key) {
      // A new or changed schedule starts from now: slots before it were never promised.
      if (claim || !getMeta(inst.db, "schedule_job")) {
        setMeta(inst.db, "schedule_job", key);
        setMeta(inst.db, "schedule_last_slot", String(slot));
      }
      return false;
    }
    const taken = Number(getMeta(inst.db, "schedule_last_slot") ?? 0);
    // One run for the newest missed slot, however many were missed (one catch-up after downtime).
    if (slot <= taken) return false;
    if (claim) setMeta(inst.db, "schedule_last_slot", String(slot));
    return true;
  }

  /** The doctor's deep check, once a week, whether or not backups are scheduled. */
  private weeklyDeepCheck(inst: Instance, now: number): void {
    const last = lastDoctorReport(inst, true);
    if (last && now - Date.parse(last.at) < DEEP_CHECK_EVERY_MS) return;
    if (!last && !getMeta(inst.db, "deep_check_due_from")) {
      // Not on the first start of a new instance: a week after it.
      setMeta(inst.db, "deep_check_due_from", String(now + DEEP_CHECK_EVERY_MS));
      return;
    }
    if (!last && now < Number(getMeta(inst.db, "deep_check_due_from"))) return;
    const report = runDoctor(inst, { deep: true });
    const bad = report.findings.filter((f) => f.severity !== "ok");
    if (bad.length) this.log(`weekly deep check: ${bad.map((f) => `${f.check} (${f.message})`).join("; ")}`);
  }

  private async checkStale(inst: Instance, s: ParsedSchedule, now: number): Promise<void> {
    const last = lastSuccess(inst.db)?.finished_at ?? null;
    const since = last ? Date.parse(last) : Number(getMeta(inst.db, "schedule_enabled_at") || now);
    if (now - since <= stalePeriodMs(s, now)) return;
    const episode = last ?? "never";
    if (getMeta(inst.db, "stale_alert_for") === episode) return;
    setMeta(inst.db, "stale_alert_for", episode);
    this.log(`no successful backup since ${last ?? "this schedule was enabled"}`);
    await alert(inst, "backup.stale", "No successful backup for twice the schedule's interval.", last, this.opts.alertOptions);
  }
}

