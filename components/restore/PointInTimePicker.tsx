"use client";

import { useEffect, useState, type ReactNode } from "react";
import { Field, Input } from "@/components/ui";
import { formatDateTime } from "@/lib/format";

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
 * The continuous window drawn as a bar with the chosen second on it, and the
 * second to restore to, in the browser's time zone (Settings → Backup, and
 * the wizard's bucket restore). `children` gets the chosen instant (the
 * window's last one, to the millisecond, while the newest second is chosen),
 * or null when the input holds no time inside the window.
 */
export function PointInTimePicker({ first, last, id, children }: { first: string; last: string; id: string; children: (at: string | null) => ReactNode }) {
  // The browser's zone is known only in the browser: the server's render would show (and hydrate) its own.
  const [zone, setZone] = useState<string | null>(null);
  const [value, setValue] = useState("");
  useEffect(() => {
    setZone(Intl.DateTimeFormat().resolvedOptions().timeZone);
    setValue(toLocalInput(last));
  }, [last]);
  const chosen = fromLocalInput(value);
  const at = chosen ? Date.parse(chosen) : NaN;
  const lo = Date.parse(first);
  const hi = Date.parse(last);
  // The newest second as the input shows it stands for the window's last instant (a copy's last file can be at .6 of it).
  const newest = value === toLocalInput(last);
  const inside = newest || (at >= lo && at <= hi);
  const position = !inside ? null : newest || hi <= lo ? 100 : ((Math.min(at, hi) - lo) / (hi - lo)) * 100;
  return (
    <div className="space-y-4">
      <div className="relative h-3 rounded-full bg-emerald-600/25" role="img" aria-label={`Restorable from ${formatDateTime(first)} to ${formatDateTime(last)}`}>
        <div className="absolute inset-y-0 left-0 right-0 rounded-full border border-emerald-700/50" />
        {position !== null && <div className="absolute -top-1 h-5 w-1 -translate-x-1/2 rounded bg-emerald-800 dark:bg-emerald-300" style={{ left: `${position}%` }} />}
      </div>
      <div className="flex justify-between text-xs text-zinc-600 dark:text-zinc-400">
        <span>{formatDateTime(first)}</span>
        <span>{formatDateTime(last)}</span>
      </div>
      <Field
        label="Restore to"
        htmlFor={id}
        error={chosen && !inside ? "That time is outside the window above." : undefined}
        hint={zone ? `Your browser's time zone (${zone}).${newest ? " This is the newest second kept." : ""}` : "Your browser's time zone."}
      >
        <Input id={id} type="datetime-local" step={1} value={value} min={zone ? toLocalInput(first) : undefined} max={zone ? toLocalInput(last) : undefined} onChange={(e) => setValue(e.target.value)} invalid={!!chosen && !inside} />
      </Field>
      {children(!chosen || !inside ? null : newest ? last : chosen)}
    </div>
  );
}
