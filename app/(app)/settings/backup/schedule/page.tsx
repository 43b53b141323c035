import type { Metadata } from "next";
import { pageAdmin } from "@/app/_server/auth";
import { currentBackupDir, backupDirChoices } from "@/lib/backup/local/directory";
import { scheduleStatus } from "@/lib/backup/jobs/scheduler";
import { currentSettings } from "@/lib/settings/store";
import { ScheduleForm } from "./_components/ScheduleForm";
import { RetentionForm } from "./_components/RetentionForm";

export const metadata: Metadata = { title: "Backup schedule" };

export default async function SchedulePage() {
  const { inst } = await pageAdmin();
  const job = currentSettings(inst.paths.settings).backup;
  let dir = job.directory;
  try {
    dir = currentBackupDir(inst);
  } catch {
    // the form shows the setting as written; Backups says what is wrong with it
  }
  return (
    <div className="space-y-8">
      <ScheduleForm job={{ ...job, directory: dir }} directories={backupDirChoices(inst)} lastSuccessAt={scheduleStatus(inst, Date.now()).lastSuccessAt} />
      <section>
        <h2 className="mb-3 text-lg font-semibold">Keep</h2>
        <RetentionForm retention={job.retention} />
      </section>
    </div>
  );
}
