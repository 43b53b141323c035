import type { Metadata } from "next";
import { pageAdmin } from "@/app/_server/auth";
import { scheduleStatus } from "@/lib/backup/jobs/scheduler";
import { recentRuns } from "@/lib/backup/runs";
import { formatDateTime } from "@/lib/format";
import { RunHistory } from "./_components/RunHistory";

export const metadata: Metadata = { title: "Backup history" };

export default async function HistoryPage() {
  const { inst } = await pageAdmin();
  const status = scheduleStatus(inst, Date.now());
  return (
    <>
      <p className="mb-3 text-sm text-zinc-600 dark:text-zinc-400" data-testid="next-run">
        {status.enabled && status.next[0] ? `Next scheduled run: ${formatDateTime(new Date(status.next[0]).toISOString())}.` : "Scheduled backups are off."}
      </p>
      <RunHistory runs={recentRuns(inst.db, 50)} />
    </>
  );
}
