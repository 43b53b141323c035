import { requireAdmin } from "@/app/_server/auth";
import { route, clientIp } from "@/app/_server/http";
import { currentSettings } from "@/lib/settings/store";
import { writeStoredBackup } from "@/lib/backup/runner";

/** Run the configured backup job now, under the same instance lock as the scheduler. */
export const POST = route(async (req) => {
  const { inst, user } = await requireAdmin();
  const scope = currentSettings(inst.paths.settings).backup.scope;
  const r = await writeStoredBackup(inst, { scope, trigger: "manual", actor: { id: user.id, name: user.username, ip: clientIp(req.headers) } });
  return Response.json({ run_id: r.runId, name: r.name, bytes: r.bytes, verified: r.verified, created_at: r.meta.created_at, timings: r.timings }, { status: 201 });
});
