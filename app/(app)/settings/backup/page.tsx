import type { Metadata } from "next";
import { maskWebhook } from "@/lib/backup/alerts";
import { pageAdmin } from "@/app/_server/auth";
import { currentBackupDir, backupDirChoices } from "@/lib/backup/local/directory";
import { listStoredBackups } from "@/lib/backup/local/repository";
import { LocalDirTarget } from "@/lib/backup/local/target";
import { scheduleStatus } from "@/lib/backup/jobs/scheduler";
import { settingsProblem } from "@/lib/settings/store";
import { decryptSecret } from "@/lib/settings/secrets";
import { formatDateTime } from "@/lib/format";
import { ScheduleForm } from "@/components/backup/ScheduleForm";
import { recentRuns } from "@/lib/backup/runs";
import { currentSettings } from "@/lib/settings/store";
import { PageTitle, Alert } from "@/components/ui";
import { BackupActions } from "@/components/backup/BackupActions";
import { BackupManager } from "@/components/backup/BackupManager";
import { RunHistory } from "@/components/backup/RunHistory";
import { EncryptionForm } from "@/components/backup/EncryptionForm";
import { OffsiteForm } from "@/components/backup/OffsiteForm";
import { lastRun } from "@/lib/backup/runs";
import { describeLocation } from "@/lib/backup/offsite/location";

export const metadata: Metadata = { title: "Backup" };

export default async function BackupPage() {
  const { inst } = await pageAdmin();
  let dir: string | null = null;
  let dirError: string | null = null;
  try {
    dir = currentBackupDir(inst);
  } catch (err) {
    dirError = (err as Error).message;
  }
  const backups = dir ? await listStoredBackups(inst, new LocalDirTarget(dir)) : [];
  const runs = recentRuns(inst.db, 10);
  const job = currentSettings(inst.paths.settings).backup;
  const scope = job.scope;
  const problem = settingsProblem(inst.paths.settings);
  const status = scheduleStatus(inst, Date.now());
  const offsiteLast = lastRun(inst.db, "offsite");
  let webhookMasked: string | null = null;
  if (job.notify.webhook_url) {
    try {
      webhookMasked = maskWebhook(decryptSecret(inst.configKey, job.notify.webhook_url));
    } catch {
      webhookMasked = "cannot be decrypted";
    }
  }
  return (
    <>
      <PageTitle description="A backup holds everything this instance knows: the database, settings, keys and every document. Keep one somewhere else than this server.">
        Backup
      </PageTitle>
      {problem && (
        <div className="mb-4">
          <Alert tone="warn">settings.yaml has an error, so the previous settings are still in force: {problem}</Alert>
        </div>
      )}
      {status.stale && (
        <div className="mb-4">
          <Alert>No successful backup for more than twice the schedule&apos;s interval. Last success: {status.lastSuccessAt ? formatDateTime(status.lastSuccessAt) : "never"}.</Alert>
        </div>
      )}
      {dirError && <Alert>{dirError}</Alert>}
      <BackupActions defaultScope={scope} directory={dir} offsite={job.offsite.enabled ? describeLocation(job.offsite) : null} />
      <h2 className="mb-3 mt-8 text-lg font-semibold">Stored backups</h2>
      <BackupManager backups={backups} offsite={!!(job.offsite.bucket && job.offsite.endpoint)} />
      <h2 id="encryption" className="mb-3 mt-8 text-lg font-semibold">Encryption</h2>
      <EncryptionForm current={{ mode: job.encryption.mode, recipients: job.encryption.recipients }} />
      <h2 id="offsite" className="mb-3 mt-8 text-lg font-semibold">
        Offsite
      </h2>
      <OffsiteForm
        offsite={{
          enabled: job.offsite.enabled,
          endpoint: job.offsite.endpoint,
          region: job.offsite.region,
          bucket: job.offsite.bucket,
          prefix: job.offsite.prefix,
          path_style: job.offsite.path_style,
          access_key_id: job.offsite.access_key_id,
          hasSecret: !!job.offsite.secret_access_key,
          checksum_compat: job.offsite.checksum_compat,
          last: offsiteLast && { status: offsiteLast.status, at: offsiteLast.finished_at ?? offsiteLast.started_at, error: offsiteLast.error, file: offsiteLast.file },
        }}
      />
      <h2 id="schedule" className="mb-3 mt-8 text-lg font-semibold">Schedule</h2>
      <ScheduleForm
        job={{ ...job, directory: dir ?? job.directory, webhookMasked }}
        directories={backupDirChoices(inst)}
        lastSuccessAt={status.lastSuccessAt}
      />
      <h2 className="mb-3 mt-8 text-lg font-semibold">Recent runs</h2>
      <p className="mb-2 text-sm text-zinc-600 dark:text-zinc-400" data-testid="next-run">
        {status.enabled && status.next[0] ? `Next scheduled run: ${formatDateTime(new Date(status.next[0]).toISOString())}.` : "Scheduled backups are off."}
      </p>
      <RunHistory runs={runs} />
    </>
  );
}
