"use client";

import { useActionState } from "react";
import { Alert, Button, Card, Field, Input } from "@/components/ui";
import type { ActionState } from "@/app/_server/actions";
import { saveProof } from "../actions";

/** Settings → Backup → Proof: rolling verification and restore drills. */
export function ProofForm({ proof }: { proof: { verify_period_days: number; drill_every_days: number } }) {
  const [state, action, pending] = useActionState<ActionState, FormData>(saveProof, {});
  const f = state.fields ?? {};
  return (
    <Card>
      <form action={action} className="space-y-4" noValidate>
        {state.error && <Alert>{state.error}</Alert>}
        {state.ok && <Alert tone="success">{state.message}</Alert>}
        <fieldset className="space-y-3">
          <legend className="sr-only">Prove</legend>
          <div className="grid gap-4 sm:grid-cols-2">
            <Field label="Re-check every stored byte within (days)" htmlFor="verify_period_days" error={f.verify_period_days} hint="Stored backups, and offsite objects, are re-read a slice an hour.">
              <Input id="verify_period_days" name="verify_period_days" type="number" min={1} max={365} defaultValue={proof.verify_period_days} invalid={!!f.verify_period_days} />
            </Field>
            <Field label="Restore drill every (days)" htmlFor="drill_every_days" error={f.drill_every_days} hint="The newest backup is restored into a scratch directory and checked. 0 turns drills off.">
              <Input id="drill_every_days" name="drill_every_days" type="number" min={0} max={90} defaultValue={proof.drill_every_days} invalid={!!f.drill_every_days} />
            </Field>
          </div>
        </fieldset>

        <Button type="submit" busy={pending} busyLabel="Saving…">
          Save proof settings
        </Button>
      </form>
    </Card>
  );
}
