import { isSetupComplete, type Instance } from "./instance";
import { APP_VERSION } from "./version";

/** What /api/health tells anyone who asks: no secrets, no names. */
export function healthReport(inst: Instance) {
  return {
    status: "ok" as const,
    setup: isSetupComplete(inst) ? ("complete" as const) : ("required" as const),
    version: APP_VERSION,
    backup: { last_success_at: null as string | null, last_status: null as string | null },
  };
}
