"use client";

import { useActionState, useMemo, useState } from "react";
import { Cron } from "croner";
import { Alert, Button, Card, Field, Input, Select } from "@/components/ui";
import { saveSchedule } from "../actions";
import type { ActionState } from "@/app/_server/actions";
import { formatDateTime } from "@/lib/format";
import { SCOPE_TABLE, SELECTABLE_SCOPES } from "@/lib/backup/format/tables";

export interface ScheduleView {
  enabled: boolean;
  directory: string;
  scope: string;
  schedule: string;
  time_zone: string;
}

const INTERVAL_MS: Record<string, number> = { hourly: 3600e3, daily: 86400e3, weekly: 7 * 86400e3 };

function previewRuns(kind: string, cron: string, tz: string, lastSuccessAt: string | null): { runs: string[]; error: string | null } {
  try {
    if (kind !== "cron") {
      const last = lastSuccessAt ? Date.parse(lastSuccessAt) : null;
      const first = last === null ? Date.now() : Math.max(Date.now(), last + INTERVAL_MS[kind]);
      return { runs: [0, 1, 2].map((i) => new Date(first + i * INTERVAL_MS[kind]).toISOString()), error: null };
    }
    if (cron.trim().split(/\s+/).length !== 5) return { runs: [], error: "Use 5 fields: minute hour day month weekday." };
    const c = new Cron(cron.trim(), { timezone: tz, paused: true });
    return { runs: c.nextRuns(3).map((d) => d.toISOString()), error: null };
  } catch (err) {
    return { runs: [], error: (err as Error).message };
  }
}

export function ScheduleForm({ job, directories, lastSuccessAt }: { job: ScheduleView; directories: string[]; lastSuccessAt: string | null }) {
  const [state, action, pending] = useActionState<ActionState, FormData>(saveSchedule, {});
  const isInterval = ["hourly", "daily", "weekly"].includes(job.schedule);
  const [kind, setKind] = useState(isInterval ? job.schedule : "cron");
  const [cron, setCron] = useState(isInterval ? "30 2 * * *" : job.schedule);
  const [tz, setTz] = useState(job.time_zone);
  const preview = useMemo(() => previewRuns(kind, cron, tz, lastSuccessAt), [kind, cron, tz, lastSuccessAt]);
  const zones = useMemo(() => (typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : []), []);
  const f = state.fields ?? {};
  const dirs = directories.includes(job.directory) ? directories : [job.directory, ...directories];

  return (
    <Card className="space-y-5">
      <form action={action} className="space-y-5" noValidate>
        <div className="flex items-start justify-between gap-4">
          <div>
            <h2 className="font-semibold">Scheduled backups</h2>
            <p className="text-sm text-zinc-600 dark:text-zinc-400">Also editable in settings.yaml; either way it takes effect without a restart.</p>
          </div>
          <label className="flex items-center gap-2 text-sm font-medium">
            <input type="checkbox" name="enabled" defaultChecked={job.enabled} className="h-4 w-4 accent-emerald-700" />
            Enabled
          </label>
        </div>
        {state.error && !state.fields && <Alert>{state.error}</Alert>}
        {state.error && state.fields && <Alert>{state.error}</Alert>}
        {state.ok && <Alert tone="success">{state.message}</Alert>}
        <div className="grid gap-4 sm:grid-cols-2">
          <Field label="When" htmlFor="schedule_kind">
            <Select id="schedule_kind" name="schedule_kind" value={kind} onChange={(e) => setKind(e.target.value)}>
              <option value="hourly">Every hour</option>
              <option value="daily">Every day</option>
              <option value="weekly">Every week</option>
              <option value="cron">At set times (cron)</option>
            </Select>
          </Field>
          {kind === "cron" ? (
            <Field label="Cron expression" htmlFor="cron" error={f.cron ?? (preview.error ? preview.error : null)} hint="minute hour day month weekday, e.g. 30 2 * * * for 02:30 every day">
              <Input id="cron" name="cron" value={cron} onChange={(e) => setCron(e.target.value)} className="font-mono" invalid={!!(f.cron || preview.error)} />
            </Field>
          ) : (
            <input type="hidden" name="cron" value="" />
          )}
          <Field label="Time zone" htmlFor="time_zone" error={f.time_zone} hint="Cron times are read in this zone.">
            <Input id="time_zone" name="time_zone" list="zones" value={tz} onChange={(e) => setTz(e.target.value)} invalid={!!f.time_zone} />
            <datalist id="zones">
              {zones.map((z) => (
                <option key={z} value={z} />
              ))}
            </datalist>
          </Field>
          <Field label="What" htmlFor="scope">
            <Select id="scope" name="scope" defaultValue={job.scope}>
              {SELECTABLE_SCOPES.map((s) => (
                <option key={s} value={s}>
                  {SCOPE_TABLE[s].label}: {SCOPE_TABLE[s].contents}
                </option>
              ))}
            </Select>
          </Field>
          <Field label="Directory" htmlFor="directory" error={f.directory} hint="Inside the data directory or COFFER_BACKUP_ROOTS.">
            <Select id="directory" name="directory" defaultValue={job.directory}>
              {dirs.map((d) => (
                <option key={d} value={d}>
                  {d}
                </option>
              ))}
            </Select>
          </Field>
        </div>
        <div className="rounded-md bg-zinc-50 px-3 py-2 text-sm dark:bg-zinc-950" data-testid="next-runs">
          <span className="font-medium">Next runs: </span>
          {preview.runs.length ? preview.runs.map((r) => formatDateTime(r)).join(" · ") : "—"}
          {kind !== "cron" && <span className="text-zinc-600 dark:text-zinc-400"> (counted from the last successful backup)</span>}
        </div>

        <Button type="submit" busy={pending} busyLabel="Saving…">
          Save schedule
        </Button>
      </form>
    </Card>
  );
}
