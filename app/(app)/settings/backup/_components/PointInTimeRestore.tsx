"use client";

import Link from "next/link";
import { useState } from "react";
import { Alert, Button, Card } from "@/components/ui";
import { PointInTimePicker } from "@/components/restore/PointInTimePicker";
import type { Preview } from "@/components/restore/RestoreFlow";
import { formatDateTime } from "@/lib/format";

export interface ContinuousWindow {
  enabled: boolean;
  first: string | null;
  last: string | null;
  problem: string | null;
}

/**
 * Settings → Backup → Restore to a point in time: the window the continuous
 * replica covers, drawn as a bar with the chosen second on it; Check stages
 * that second like any backup, for the same preview and confirmation.
 */
export function PointInTimeRestore({ window: w, onStaged }: { window: ContinuousWindow; onStaged: (p: Preview) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!w.enabled || !w.first || !w.last) {
    return (
      <Card>
        <p className="text-sm text-zinc-600 dark:text-zinc-400" data-testid="pitr-off">
          {w.problem ??
            (w.enabled
              ? "Continuous protection is on; the first point to restore to appears within a minute."
              : "Continuous protection is off, so the newest backup is the only way back. Turn it on with backup.continuous.enabled in settings.yaml.")}
        </p>
      </Card>
    );
  }
  async function check(chosen: string) {
    setBusy(true);
    setError(null);
    const res = await fetch("/api/settings/backup/continuous/restore", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ at: chosen }) }).catch(() => null);
    const data = res ? await res.json().catch(() => null) : null;
    setBusy(false);
    if (res?.ok && data) onStaged(data as Preview);
    else setError(data?.error?.message ?? "This server did not answer. Try again.");
  }

  return (
    <Card className="space-y-4" data-testid="pitr">
      <p className="text-sm text-zinc-600 dark:text-zinc-400">
        Every change is kept from <strong>{formatDateTime(w.first)}</strong> to <strong>{formatDateTime(w.last)}</strong>. Pick a second in between: the instance goes back to
        how it was then (documents, users, their trash), after a preview and your password.
      </p>
      <PointInTimePicker first={w.first} last={w.last} id="pitr-at">
        {(chosen) => (
          <>
            {error && <Alert>{error}</Alert>}
            <div className="flex flex-wrap items-center gap-2">
              <Button type="button" onClick={() => chosen && check(chosen)} busy={busy} busyLabel="Rebuilding that moment…" disabled={!chosen}>
                Check this point in time
              </Button>
              {chosen && (
                <Link
                  href={`/settings/backup/point-in-time?at=${encodeURIComponent(chosen)}`}
                  className="inline-block rounded-md px-3 py-2 text-sm font-medium text-emerald-700 hover:underline dark:text-emerald-400"
                >
                  Only some documents? See what it held
                </Link>
              )}
            </div>
          </>
        )}
      </PointInTimePicker>
    </Card>
  );
}
