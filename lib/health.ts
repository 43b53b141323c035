import { isSetupComplete, type Instance } from "./instance";
import { APP_VERSION } from "./version";
import { lastRun, lastSuccess } from "./backup/runs";
import { scheduleStatus } from "./backup/scheduler";

/** What /api/health tells anyone who asks: no secrets, no names. */
export function healthReport(inst: Instance) {
  const last = lastRun(inst.db);
  const ok = lastSuccess(inst.db);
  const schedule = scheduleStatus(inst, Date.now());
  return {
    status: "ok" as const,
    setup: isSetupComplete(inst) ? ("complete" as const) : ("required" as const),
    version: APP_VERSION,
    backup: {
      last_success_at: ok?.finished_at ?? null,
      last_status: last?.status ?? null,
      last_run_at: last?.finished_at ?? null,
      scheduled: schedule.enabled,
      next_run_at: schedule.next[0] ? new Date(schedule.next[0]).toISOString() : null,
      stale: schedule.stale,
    },
  };
}
