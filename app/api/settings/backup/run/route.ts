import { requireAdminOrToken } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { currentSettings } from "@/lib/settings/store";
import { runBackupJob } from "@/lib/backup/jobs/runner";

/**
 * Run the configured backup job now (and its offsite part, when on), under
 * the same instance lock as the scheduler: an admin, or an API token with backup:run.
 */
export const POST = route(async (req) => {
  const { inst, actor } = await requireAdminOrToken(req, "backup:run", "Back up now");
  const scope = currentSettings(inst.paths.settings).backup.scope;
  const { local: r, offsite } = await runBackupJob(inst, { scope, trigger: "manual", actor });
  return Response.json(
    {
      run_id: r.runId,
      name: r.name,
      bytes: r.bytes,
      verified: r.verified,
      created_at: r.meta.created_at,
      timings: r.timings,
      offsite: offsite && (offsite.ok ? { ok: true, snapshot: offsite.result.snapshot, uploaded: offsite.result.blobsUploaded, skipped: offsite.result.blobsSkipped, bytes: offsite.result.bytesUploaded, snapshot_bytes: offsite.result.snapshotBytes, seconds: offsite.result.seconds } : { ok: false, code: offsite.error.code, error: offsite.error.message }),
    },
    { status: 201 },
  );
});
