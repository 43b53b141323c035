import type { Metadata } from "next";
import { pageAdmin } from "@/app/_server/auth";
import { currentBackupDir } from "@/lib/backup/local/directory";
import { listStoredBackups } from "@/lib/backup/local/repository";
import { LocalDirTarget } from "@/lib/backup/local/target";
import { scheduleStatus } from "@/lib/backup/jobs/scheduler";
import { currentSettings } from "@/lib/settings/store";
import { describeLocation } from "@/lib/backup/offsite/location";
import { formatDateTime } from "@/lib/format";
import { Alert } from "@/components/ui";
import { continuousStatus } from "@/lib/continuous/status";
import { BackupActions } from "./_components/BackupActions";
import { BackupManager } from "./_components/BackupManager";

export const metadata: Metadata = { title: "Backup" };

/** Settings → Backup: back up now, and the backups there are (stored here and offsite), each restorable. */
export default async function BackupsPage() {
  const { inst } = await pageAdmin();
  let dir: string | null = null;
  let dirError: string | null = null;
  try {
    dir = currentBackupDir(inst);
  } catch (err) {
    dirError = (err as Error).message;
  }
  const backups = dir ? await listStoredBackups(inst, new LocalDirTarget(dir)) : [];
  const job = currentSettings(inst.paths.settings).backup;
  const status = scheduleStatus(inst, Date.now());
  const [local] = continuousStatus(inst);
  return (
    <>
      {status.stale && (
        <div className="mb-4">
          <Alert>No successful backup for more than twice the schedule&apos;s interval. Last success: {status.lastSuccessAt ? formatDateTime(status.lastSuccessAt) : "never"}.</Alert>
        </div>
      )}
      {dirError && <Alert>{dirError}</Alert>}
      <BackupActions defaultScope={job.scope} directory={dir} offsite={job.offsite.enabled ? describeLocation(job.offsite) : null} />
      <h2 className="mb-3 mt-8 text-lg font-semibold">Stored backups</h2>
      <BackupManager
        backups={backups}
        offsite={!!(job.offsite.bucket && job.offsite.endpoint)}
        continuous={{ enabled: local.enabled, first: local.first_restorable_at, last: local.last_restorable_at, problem: local.problem }}
      />
    </>
  );
}
