"use client";

import Link from "next/link";
import { useEffect, useState } from "react";
import { Alert, Button, Card, Field, Input } from "@/components/ui";
import type { Preview } from "@/components/restore/RestoreFlow";
import { formatDateTime } from "@/lib/format";

export interface ContinuousWindow {
  enabled: boolean;
  first: string | null;
  last: string | null;
  problem: string | null;
}

/** `datetime-local` speaks the browser's local time without a zone: the input's value for an instant, and back. */
const toLocalInput = (iso: string) => {
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
};
const fromLocalInput = (value: string) => {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
};

/**
 * Settings → Backup → Restore to a point in time: the window the continuous
 * replica covers, drawn as a bar with the chosen second on it; Check stages
 * that second like any backup, for the same preview and confirmation.
 */
export function PointInTimeRestore({ window: w, onStaged }: { window: ContinuousWindow; onStaged: (p: Preview) => void }) {
  // The browser's zone is known only in the browser: the server's render would show (and hydrate) its own.
  const [zone, setZone] = useState<string | null>(null);
  const [value, setValue] = useState("");
  useEffect(() => {
    setZone(Intl.DateTimeFormat().resolvedOptions().timeZone);
    if (w.last) setValue(toLocalInput(w.last));
  }, [w.last]);
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
  const first = Date.parse(w.first);
  const last = Date.parse(w.last);
  const chosen = fromLocalInput(value);
  const at = chosen ? Date.parse(chosen) : NaN;
  const inside = at >= first && at <= last;
  const position = inside && last > first ? ((at - first) / (last - first)) * 100 : null;

  async function check() {
    if (!chosen) return setError("Enter a date and time.");
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
      <div className="relative h-3 rounded-full bg-emerald-600/25" role="img" aria-label={`Restorable from ${formatDateTime(w.first)} to ${formatDateTime(w.last)}`}>
        <div className="absolute inset-y-0 left-0 right-0 rounded-full border border-emerald-700/50" />
        {position !== null && <div className="absolute -top-1 h-5 w-1 -translate-x-1/2 rounded bg-emerald-800 dark:bg-emerald-300" style={{ left: `${position}%` }} />}
      </div>
      <div className="flex justify-between text-xs text-zinc-600 dark:text-zinc-400">
        <span>{formatDateTime(w.first)}</span>
        <span>{formatDateTime(w.last)}</span>
      </div>
      <Field
        label="Restore to"
        htmlFor="pitr-at"
        error={chosen && !inside ? "That time is outside the window above." : undefined}
        hint={zone ? `Your browser's time zone (${zone}).` : "Your browser's time zone."}
      >
        <Input id="pitr-at" type="datetime-local" step={1} value={value} min={zone ? toLocalInput(w.first) : undefined} max={zone ? toLocalInput(w.last) : undefined} onChange={(e) => setValue(e.target.value)} invalid={!!chosen && !inside} />
      </Field>
      {error && <Alert>{error}</Alert>}
      <div className="flex flex-wrap items-center gap-2">
        <Button type="button" onClick={check} busy={busy} busyLabel="Rebuilding that moment…" disabled={!inside}>
          Check this point in time
        </Button>
        {inside && chosen && (
          <Link
            href={`/settings/backup/point-in-time?at=${encodeURIComponent(chosen)}`}
            className="inline-block rounded-md px-3 py-2 text-sm font-medium text-emerald-700 hover:underline dark:text-emerald-400"
          >
            Only some documents? See what it held
          </Link>
        )}
      </div>
    </Card>
  );
}
