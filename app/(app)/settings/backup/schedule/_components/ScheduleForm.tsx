"use client";

import { useActionState, useMemo, useState } from "react";
import { Cron } from "croner";
import { Alert, Button, Card, Field, Input, Select } from "@/components/ui";
import { saveBackupJob, sendTestAlert } from "@/app/(app)/settings/backup/actions";
import type { ActionState } from "@/app/_server/actions";
import { formatDateTime } from "@/lib/format";
import { SCOPE_TABLE, SELECTABLE_SCOPES } from "@/lib/backup/format/tables";

export interface JobView {
  enabled: boolean;
  directory: string;
  scope: string;
  schedule: string;
  time_zone: string;
  retention: { mode: string; count: number; days: number; gfs: Record<"latest" | "hourly" | "daily" | "weekly" | "monthly", number> };
  webhookMasked: string | null;
  proof: { verify_period_days: number; drill_every_days: number };
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

export function ScheduleForm({ job, directories, lastSuccessAt }: { job: JobView; directories: string[]; lastSuccessAt: string | null }) {
  const [state, action, pending] = useActionState<ActionState, FormData>(saveBackupJob, {});
  const [testState, testAction, testing] = useActionState<ActionState, FormData>(sendTestAlert, {});
  const isInterval = ["hourly", "daily", "weekly"].includes(job.schedule);
  const [kind, setKind] = useState(isInterval ? job.schedule : "cron");
  const [cron, setCron] = useState(isInterval ? "30 2 * * *" : job.schedule);
  const [tz, setTz] = useState(job.time_zone);
  const [mode, setMode] = useState(job.retention.mode);
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

        <fieldset className="space-y-3">
          <legend className="text-sm font-semibold">Keep</legend>
          <div className="grid gap-4 sm:grid-cols-3">
            <Field label="Retention" htmlFor="retention_mode">
              <Select id="retention_mode" name="retention_mode" value={mode} onChange={(e) => setMode(e.target.value)}>
                <option value="count">The last N backups</option>
                <option value="days">Backups newer than N days</option>
                <option value="gfs">Grandfather-father-son</option>
              </Select>
            </Field>
            <div className={mode === "count" ? "" : "hidden"}>
              <Field label="Backups to keep" htmlFor="count" error={f.count}>
                <Input id="count" name="count" type="number" min={1} defaultValue={job.retention.count} invalid={!!f.count} />
              </Field>
            </div>
            <div className={mode === "days" ? "" : "hidden"}>
              <Field label="Days to keep" htmlFor="days" error={f.days}>
                <Input id="days" name="days" type="number" min={1} defaultValue={job.retention.days} invalid={!!f.days} />
              </Field>
            </div>
          </div>
          <div className={mode === "gfs" ? "grid grid-cols-2 gap-3 sm:grid-cols-5" : "hidden"}>
            {(["latest", "hourly", "daily", "weekly", "monthly"] as const).map((k) => (
              <Field key={k} label={k[0].toUpperCase() + k.slice(1)} htmlFor={`gfs_${k}`} error={f[`gfs_${k}`]}>
                <Input id={`gfs_${k}`} name={`gfs_${k}`} type="number" min={0} defaultValue={job.retention.gfs[k]} />
              </Field>
            ))}
          </div>
          <p className="text-xs text-zinc-600 dark:text-zinc-400">
            Retention runs only after a successful, verified backup. It never deletes the newest verified backup, keeps prerestore backups at least 7 days, and
            never touches files that are not Coffer backups.
          </p>
        </fieldset>

        <fieldset className="space-y-3">
          <legend className="text-sm font-semibold">Prove</legend>
          <div className="grid gap-4 sm:grid-cols-2">
            <Field label="Re-check every stored byte within (days)" htmlFor="verify_period_days" error={f.verify_period_days} hint="Stored backups, and offsite objects, are re-read a slice an hour.">
              <Input id="verify_period_days" name="verify_period_days" type="number" min={1} max={365} defaultValue={job.proof.verify_period_days} invalid={!!f.verify_period_days} />
            </Field>
            <Field label="Restore drill every (days)" htmlFor="drill_every_days" error={f.drill_every_days} hint="The newest backup is restored into a scratch directory and checked. 0 turns drills off.">
              <Input id="drill_every_days" name="drill_every_days" type="number" min={0} max={90} defaultValue={job.proof.drill_every_days} invalid={!!f.drill_every_days} />
            </Field>
          </div>
        </fieldset>

        <Field
          label="Alert webhook"
          htmlFor="webhook_url"
          error={f.webhook_url}
          hint={job.webhookMasked ? `Set (${job.webhookMasked}). Leave empty to keep it.` : "Coffer POSTs JSON here when a backup fails or backups go stale. Stored encrypted."}
        >
          <Input id="webhook_url" name="webhook_url" type="url" placeholder="https://…" autoComplete="off" invalid={!!f.webhook_url} />
        </Field>
        {job.webhookMasked && (
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" name="clear_webhook" className="h-4 w-4" /> Remove the webhook
          </label>
        )}
        <Button type="submit" busy={pending} busyLabel="Saving…">
          Save schedule
        </Button>
      </form>
      {job.webhookMasked && (
        <form action={testAction} className="flex flex-wrap items-center gap-3 border-t border-zinc-200 pt-4 dark:border-zinc-800">
          <Button type="submit" variant="secondary" busy={testing} busyLabel="Sending…">
            Send test alert
          </Button>
          {testState.ok && <Alert tone="success">{testState.message}</Alert>}
          {testState.error && <Alert>{testState.error}</Alert>}
        </form>
      )}
    </Card>
  );
}
