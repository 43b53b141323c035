import type { Metadata } from "next";
import { pageAdmin } from "@/app/_server/auth";
import { listStoredBackups, currentBackupDir } from "@/lib/backup/store";
import { recentRuns } from "@/lib/backup/runs";
import { currentSettings } from "@/lib/settings/store";
import { PageTitle, Alert } from "@/components/ui";
import { BackupActions } from "@/components/backup/BackupActions";
import { BackupManager } from "@/components/backup/BackupManager";
import { RunHistory } from "@/components/backup/RunHistory";

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
  const backups = dir ? await listStoredBackups(inst, dir) : [];
  const runs = recentRuns(inst.db, 10);
  const scope = currentSettings(inst.paths.settings).backup.scope;
  return (
    <>
      <PageTitle description="A backup holds everything this instance knows: the database, settings, keys and every document. Keep one somewhere else than this server.">
        Backup
      </PageTitle>
      {dirError && <Alert>{dirError}</Alert>}
      <BackupActions defaultScope={scope} directory={dir} />
      <h2 className="mb-3 mt-8 text-lg font-semibold">Stored backups</h2>
      <BackupManager backups={backups} />
      <h2 className="mb-3 mt-8 text-lg font-semibold">Recent runs</h2>
      <RunHistory runs={runs} />
    </>
  );
}
