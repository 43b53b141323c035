import type { Instance } from "../../instance";
import { Ticker } from "../../util/ticker";
import { currentSettings } from "../../settings/store";
import { tryLock } from "../../lock";
import { runBackupJob } from "./runner";
import { pruneBackups } from "../local/repository";
import { resolveBackupDir } from "../local/directory";
import { LocalDirTarget } from "../local/target";
import { lastSuccess } from "../runs";
import { parseSchedule, latestSlot, nextRuns, stalePeriodMs, type ParsedSchedule } from "./schedule";
import { alert, type SendOptions } from "../alerts";
import { readMs, writeMs, readText, writeText } from "../../db/job-state";

/** After a failed run, wait this long (or the interval, if shorter) before trying again. */
const RETRY_MS = 10 * 60 * 1000;

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
  const enabledAt = (readMs(inst.db, "schedule_enabled_at") ?? now);
  const since = lastMs ?? enabledAt;
  return {
    enabled: job.enabled,
    next: job.enabled ? nextRuns(parsed, lastMs, now) : [],
    lastSuccessAt: last?.finished_at ?? null,
    stale: job.enabled && now - since > stalePeriodMs(parsed, now),
    error: null,
  };
}

/**
 * Decides, each tick, whether the configured job is due; runs it under the
 * instance lock; prunes after a verified success; alerts on failure and
 * staleness. Reads settings on every tick, so saves and hand edits take
 * effect without a restart (a run in progress finishes first).
 */
export class BackupScheduler {
  private readonly ticker = new Ticker(() => this.tick());
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
    this.ticker.start(tickMs);
  }

  stop(): void {
    this.ticker.stop();
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
    if (!job.enabled) {
      // Only on the change: an idle scheduler must not write every tick.
      if (readMs(inst.db, "schedule_enabled_at")) writeMs(inst.db, "schedule_enabled_at", null);
      return "disabled";
    }
    if (!readMs(inst.db, "schedule_enabled_at")) writeMs(inst.db, "schedule_enabled_at", now);
    let parsed: ParsedSchedule;
    try {
      parsed = parseSchedule(job.schedule, job.time_zone);
    } catch {
      return "invalid";
    }
    await this.checkStale(inst, parsed, now);
    if (!this.due(inst, parsed, job.schedule, job.time_zone, now, false)) return "idle";

    const lock = tryLock(inst.paths.root, "scheduled backup");
    if (!lock) return "busy";
    try {
      // Claimed under the lock: another process may have just run this slot.
      if (!inst.db.transaction(() => this.due(inst, parsed, job.schedule, job.time_zone, now, true))()) return "idle";
      writeMs(inst.db, "schedule_last_attempt", now);
      try {
        const target = new LocalDirTarget(resolveBackupDir(inst, job.directory));
        await runBackupJob(inst, { scope: job.scope, trigger: "schedule", lock, target, now: new Date(now), pruneOffsiteWith: job.retention, log: this.log, alertOptions: this.opts.alertOptions });
        await pruneBackups(inst, target, job.retention, lock, new Date(this.now()), this.log);
        return "ran";
      } catch (err) {
        const message = (err as Error).message;
        this.log(`scheduled backup failed: ${message}`);
        await alert(inst, "backup.failed", message, lastSuccess(inst.db)?.finished_at ?? null, this.opts.alertOptions);
        return "failed";
      }
    } finally {
      lock.release();
    }
  }

  /** Is a run due? With claim=true (inside a transaction) the cron slot is recorded as taken. */
  private due(inst: Instance, s: ParsedSchedule, schedule: string, tz: string, now: number, claim: boolean): boolean {
    const lastAttempt = (readMs(inst.db, "schedule_last_attempt") ?? 0);
    if (s.kind === "interval") {
      const last = lastSuccess(inst.db);
      const lastMs = last?.finished_at ? Date.parse(last.finished_at) : null;
      if (lastMs !== null && now < lastMs + s.ms) return false;
      return now - lastAttempt >= Math.min(s.ms, RETRY_MS);
    }
    const slot = latestSlot(s, now);
    if (slot === null) return false;
    const key = jobKey(schedule, tz);
    if (readText(inst.db, "schedule_job") !== key) {
      // A new or changed schedule starts from now: slots before it were never promised. Recorded on every
      // path: recording only the first schedule left an edited cron (say, the 03:00 one New setup makes)
      // waiting for a claim that the unrecorded change itself prevented, so it never ran.
      writeText(inst.db, "schedule_job", key);
      writeMs(inst.db, "schedule_last_slot", slot);
      return false;
    }
    const taken = (readMs(inst.db, "schedule_last_slot") ?? 0);
    // One run for the newest missed slot, however many were missed (one catch-up after downtime).
    if (slot <= taken) return false;
    if (claim) writeMs(inst.db, "schedule_last_slot", slot);
    return true;
  }

  private async checkStale(inst: Instance, s: ParsedSchedule, now: number): Promise<void> {
    const last = lastSuccess(inst.db)?.finished_at ?? null;
    const since = last ? Date.parse(last) : (readMs(inst.db, "schedule_enabled_at") ?? now);
    if (now - since <= stalePeriodMs(s, now)) return;
    const episode = last ?? "never";
    if (readText(inst.db, "stale_alert_for") === episode) return;
    writeText(inst.db, "stale_alert_for", episode);
    this.log(`no successful backup since ${last ?? "this schedule was enabled"}`);
    await alert(inst, "backup.stale", "No successful backup for twice the schedule's interval.", last, this.opts.alertOptions);
  }
}

