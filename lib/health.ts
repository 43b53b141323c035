import { isSetupComplete, type Instance } from "./instance";
import { APP_VERSION } from "./version";
import { lastRun, lastSuccess } from "./backup/runs";

/** What /api/health tells anyone who asks: no secrets, no names. */
export function healthReport(inst: Instance) {
  const last = lastRun(inst.db);
  const ok = lastSuccess(inst.db);
  return {
    status: "ok" as const,
    setup: isSetupComplete(inst) ? ("complete" as const) : ("required" as const),
    version: APP_VERSION,
    backup: {
      last_success_at: ok?.finished_at ?? null,
      last_status: last?.status ?? null,
      last_run_at: last?.finished_at ?? null,
    },
  };
}
