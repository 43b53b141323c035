import fs from "node:fs";
import { isSetupComplete, type Instance } from "./instance";
import { APP_VERSION } from "./version";
import { lastRun, lastSuccess } from "./backup/runs";
import { scheduleStatus } from "./backup/jobs/scheduler";
import { quickChecks, lastDoctorReport, type Finding } from "./doctor";
import { currentSettings, settingsProblem } from "./settings/store";
import { lockHolder } from "./lock";
import { proofSummary } from "./backup/proof/proof";
import { continuousStatus, LAG_THRESHOLD_S } from "./continuous/status";

export type HealthStatus = "ok" | "degraded" | "failing";

/** One reason health is not ok: a stable code and a sentence without secrets or names. */
export interface HealthReason {
  level: "warn" | "fail";
  code: string;
  message: string;
  /** The page where it is fixed, if there is one. */
  fix?: string;
}

/** Quick checks read the whole database (quick_check): a monitor polling every few seconds gets the last result. */
const QUICK_CHECK_TTL_MS = 10_000;
const quickKey = Symbol.for("coffer.healthQuickChecks");

function cachedQuickChecks(inst: Instance, now: number): Finding[] {
  const g = globalThis as unknown as Record<symbol, { db: unknown; at: number; findings: Finding[] } | undefined>;
  const hit = g[quickKey];
  if (hit && hit.db === inst.db && now - hit.at < QUICK_CHECK_TTL_MS) return hit.findings;
  const findings = quickChecks(inst);
  g[quickKey] = { db: inst.db, at: now, findings };
  return findings;
}

function writable(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Why this instance is not wholly well, worst first. `quick`: findings the caller has just computed. */
export function healthReasons(inst: Instance, now = Date.now(), quick?: Finding[]): HealthReason[] {
  const reasons: HealthReason[] = [];
  if (!writable(inst.paths.root)) reasons.push({ level: "fail", code: "DATA_DIR_NOT_WRITABLE", message: "The data directory is not writable: nothing can be saved." });
  for (const f of quick ?? cachedQuickChecks(inst, now)) {
    if (f.severity === "fail") reasons.push({ level: "fail", code: `CHECK_${f.check.toUpperCase().replace(/\W+/g, "_")}`, message: f.message });
    else if (f.severity === "warn") reasons.push({ level: "warn", code: `CHECK_${f.check.toUpperCase().replace(/\W+/g, "_")}`, message: f.message });
  }
  const deep = lastDoctorReport(inst, true);
  const deepBad = deep?.findings.filter((f) => f.severity === "fail") ?? [];
  if (deepBad.length) reasons.push({ level: "warn", code: "DEEP_CHECK_FAILED", message: `The last deep check found problems: ${deepBad.map((f) => f.message).join(" ")}`, fix: "/settings/health" });
  if (settingsProblem(inst.paths.settings)) reasons.push({ level: "warn", code: "SETTINGS_INVALID", message: "settings.yaml has an error; the previous settings are still in force.", fix: "/settings/backup" });
  if (isSetupComplete(inst)) {
    const schedule = scheduleStatus(inst, now);
    const last = lastRun(inst.db);
    const fix = "/settings/backup";
    if (!schedule.enabled) reasons.push({ level: "warn", code: "BACKUPS_OFF", message: "Scheduled backups are off.", fix });
    if (schedule.stale) reasons.push({ level: "warn", code: "BACKUPS_STALE", message: "No successful backup for twice the schedule's interval.", fix });
    if (last?.status === "failed") reasons.push({ level: "warn", code: "BACKUP_FAILED", message: `The last backup failed (${last.finished_at ?? last.started_at}).`, fix });
    const job = currentSettings(inst.paths.settings).backup;
    if (job.encryption.mode === "off") {
      reasons.push({ level: "warn", code: "BACKUPS_UNENCRYPTED", message: "Backups hold every document and key in clear.", fix });
    }
    const offsiteFix = "/settings/backup/offsite";
    const lastOffsite = job.offsite.enabled ? lastRun(inst.db, "offsite") : null;
    if (!job.offsite.enabled) {
      reasons.push({ level: "warn", code: "OFFSITE_OFF", message: "Backups are not copied offsite: a failure of this server's disk takes the data and its backups together.", fix: offsiteFix });
    } else if (lastOffsite?.status === "failed") {
      const at = lastOffsite;
      reasons.push({ level: "warn", code: "OFFSITE_FAILED", message: `The last offsite copy failed (${at.finished_at ?? at.started_at}).`, fix: offsiteFix });
    }
    for (const c of continuousStatus(inst, now).filter((c) => c.enabled)) {
      if (c.problem && c.location === "offsite") reasons.push({ level: "warn", code: "CONTINUOUS_OFFSITE_BEHIND", message: c.problem, fix: offsiteFix });
      else if (c.problem) reasons.push({ level: "warn", code: "CONTINUOUS_UNAVAILABLE", message: `Continuous protection (${c.location}) is not running: ${c.problem}`, fix });
      else if (c.disk_full) reasons.push({ level: "warn", code: "CONTINUOUS_DISK_FULL", message: c.disk_full, fix });
      else if (c.lag_seconds !== null && c.lag_seconds > LAG_THRESHOLD_S) {
        reasons.push({ level: "warn", code: "CONTINUOUS_LAG", message: `Continuous protection (${c.location}) is ${Math.round(c.lag_seconds / 60)} minutes behind: changes since ${c.last_restorable_at} are not protected yet.`, fix });
      }
    }
    const proof = proofSummary(inst, now);
    const v = proof.verification;
    const proofFix = "/settings/health#proof";
    if (v.failed.length) reasons.push({ level: "warn", code: "VERIFY_FAILED", message: `${v.failed.length} stored backup object(s) failed their last re-check: they may not restore.`, fix: proofFix });
    if (v.overdue) reasons.push({ level: "warn", code: "VERIFY_OVERDUE", message: `${v.overdue} stored backup object(s) have not been re-checked within ${v.period_days} days.`, fix: proofFix });
    if (proof.last_drill?.status === "failed") reasons.push({ level: "warn", code: "DRILL_FAILED", message: `The last restore drill failed (${proof.last_drill.finished_at}).`, fix: proofFix });
    else if (proof.drill_overdue) reasons.push({ level: "warn", code: "DRILL_OVERDUE", message: `No restore drill has passed in ${2 * proof.drills_every_days} days: nothing proves the backups restore.`, fix: proofFix });
  }
  return reasons.sort((a, b) => (a.level === b.level ? 0 : a.level === "fail" ? -1 : 1));
}

export function healthStatus(reasons: HealthReason[]): HealthStatus {
  return reasons.some((r) => r.level === "fail") ? "failing" : reasons.length ? "degraded" : "ok";
}

/** What /api/health tells an admin or a metrics:read token: no secrets, no names. */
export function healthReport(inst: Instance, now = Date.now()) {
  const reasons = healthReasons(inst, now);
  const last = lastRun(inst.db);
  const ok = lastSuccess(inst.db);
  const schedule = scheduleStatus(inst, now);
  const holder = lockHolder(inst.paths.root);
  return {
    status: healthStatus(reasons),
    reasons,
    setup: isSetupComplete(inst) ? ("complete" as const) : ("required" as const),
    version: APP_VERSION,
    backup: {
      last_success_at: ok?.finished_at ?? null,
      last_status: last?.status ?? null,
      last_run_at: last?.finished_at ?? null,
      scheduled: schedule.enabled,
      next_run_at: schedule.next[0] ? new Date(schedule.next[0]).toISOString() : null,
      stale: schedule.stale,
      offsite: {
        enabled: currentSettings(inst.paths.settings).backup.offsite.enabled,
        last_success_at: lastSuccess(inst.db, "offsite")?.finished_at ?? null,
        last_status: lastRun(inst.db, "offsite")?.status ?? null,
      },
    },
    proof: proofReport(inst, now),
    continuous: continuousStatus(inst, now).map(({ problem: _problem, disk_full: _full, ...c }) => c),
    job: holder ? { running: holder.purpose, since: holder.since } : null,
  };
}

/** Health's proof part: counts and times only (no names of files or objects). */
function proofReport(inst: Instance, now: number) {
  const p = proofSummary(inst, now);
  return {
    last_proven_restore: p.last_proven_restore ? { at: p.last_proven_restore.at, source: p.last_proven_restore.source, seconds: p.last_proven_restore.seconds } : null,
    last_drill: p.last_drill ? { at: p.last_drill.finished_at, status: p.last_drill.status } : null,
    drill_overdue: p.drill_overdue,
    verification: { period_days: p.verification.period_days, last_slice_at: p.verification.last_slice_at, objects: p.verification.objects, failed: p.verification.failed.length, overdue: p.verification.overdue },
  };
}

/**
 * What /api/health tells anyone: whether to send traffic here and whether
 * setup is pending, nothing about schedules, encryption or offsite copies.
 */
export function publicHealth(report: ReturnType<typeof healthReport>): { status: HealthStatus; setup: "complete" | "required" } {
  return { status: report.status, setup: report.setup };
}
