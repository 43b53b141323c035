"use client";

import { useActionState, useState } from "react";
import { Alert, Button, Card, Field, Input, Select } from "@/components/ui";
import type { ActionState } from "@/app/_server/actions";
import { saveRetention } from "../actions";

export interface RetentionView {
  mode: string;
  count: number;
  days: number;
  gfs: Record<"latest" | "hourly" | "daily" | "weekly" | "monthly", number>;
}

/** Settings → Backup → Schedule → Keep. */
export function RetentionForm({ retention }: { retention: RetentionView }) {
  const [state, action, pending] = useActionState<ActionState, FormData>(saveRetention, {});
  const [mode, setMode] = useState(retention.mode);
  const f = state.fields ?? {};
  return (
    <Card>
      <form action={action} className="space-y-4" noValidate>
        {state.error && <Alert>{state.error}</Alert>}
        {state.ok && <Alert tone="success">{state.message}</Alert>}
        <fieldset className="space-y-3">
          <legend className="sr-only">Keep</legend>
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
                <Input id="count" name="count" type="number" min={1} defaultValue={retention.count} invalid={!!f.count} />
              </Field>
            </div>
            <div className={mode === "days" ? "" : "hidden"}>
              <Field label="Days to keep" htmlFor="days" error={f.days}>
                <Input id="days" name="days" type="number" min={1} defaultValue={retention.days} invalid={!!f.days} />
              </Field>
            </div>
          </div>
          <div className={mode === "gfs" ? "grid grid-cols-2 gap-3 sm:grid-cols-5" : "hidden"}>
            {(["latest", "hourly", "daily", "weekly", "monthly"] as const).map((k) => (
              <Field key={k} label={k[0].toUpperCase() + k.slice(1)} htmlFor={`gfs_${k}`} error={f[`gfs_${k}`]}>
                <Input id={`gfs_${k}`} name={`gfs_${k}`} type="number" min={0} defaultValue={retention.gfs[k]} />
              </Field>
            ))}
          </div>
          <p className="text-xs text-zinc-600 dark:text-zinc-400">
            Retention runs only after a successful, verified backup. It never deletes the newest verified backup, keeps prerestore backups at least 7 days, and
            never touches files that are not Coffer backups.
          </p>
        </fieldset>

        <Button type="submit" busy={pending} busyLabel="Saving…">
          Save retention
        </Button>
      </form>
    </Card>
  );
}
