import { formatBytes, formatDateTime } from "@/lib/format";
import type { BackupRun } from "@/lib/backup/runs";
import { scopeLabel } from "@/lib/backup/format/tables";

/** "3 new document files, 120 already there" from an offsite run's detail. */
function offsiteDetail(detail: string): string {
  try {
    const d = JSON.parse(detail) as { blobs_uploaded?: number; blobs_skipped?: number };
    return `${d.blobs_uploaded ?? 0} new document file(s), ${d.blobs_skipped ?? 0} already there`;
  } catch {
    return "";
  }
}

export function RunHistory({ runs }: { runs: BackupRun[] }) {
  if (runs.length === 0) return <p className="text-sm text-zinc-600 dark:text-zinc-400">No backup has run yet.</p>;
  return (
    <ul className="divide-y divide-zinc-200 rounded-lg border border-zinc-200 bg-white text-sm dark:divide-zinc-800 dark:border-zinc-800 dark:bg-zinc-900">
      {runs.map((r) => {
        const secs = r.finished_at ? Math.max(0, (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000) : null;
        return (
          <li key={r.id} className="flex flex-wrap items-baseline gap-x-3 gap-y-1 px-4 py-2" data-testid="run-row">
            <span className={r.status === "success" ? "font-medium text-emerald-700 dark:text-emerald-400" : r.status === "failed" ? "font-medium text-red-700 dark:text-red-400" : "font-medium"}>
              {r.status === "success" ? "Succeeded" : r.status === "failed" ? "Failed" : "Running"}
            </span>
            <span className="tabular-nums">{formatDateTime(r.started_at)}</span>
            <span className="text-zinc-600 dark:text-zinc-400">
              {r.target === "offsite" ? "offsite copy · " : r.target === "verify" ? `verification of ${r.file} · ` : ""}
              {r.trigger} · {scopeLabel(r.scope)}
              {secs !== null ? ` · ${secs.toFixed(1)} s` : ""}
              {r.bytes !== null ? ` · ${formatBytes(r.bytes)}${r.target === "offsite" ? " sent" : ""}` : ""}
              {r.target === "offsite" && r.detail ? ` · ${offsiteDetail(r.detail)}` : ""}
            </span>
            {r.error && <span className="w-full text-red-700 dark:text-red-400">{r.error}</span>}
          </li>
        );
      })}
    </ul>
  );
}
