"use client";

import { useActionState } from "react";
import { Alert, Button, Card, Field, Input } from "@/components/ui";
import type { ActionState } from "@/app/_server/actions";
import { saveAlerts, sendTestAlert } from "../actions";

/** Settings → Backup → Proof → Alerts: where Coffer reports a failed or stale backup. */
export function AlertsForm({ webhookMasked }: { webhookMasked: string | null }) {
  const [state, action, pending] = useActionState<ActionState, FormData>(saveAlerts, {});
  const [testState, testAction, testing] = useActionState<ActionState, FormData>(sendTestAlert, {});
  const f = state.fields ?? {};
  return (
    <Card className="space-y-4">
      <form action={action} className="space-y-4" noValidate>
        {state.error && <Alert>{state.error}</Alert>}
        {state.ok && <Alert tone="success">{state.message}</Alert>}
        <Field
          label="Alert webhook"
          htmlFor="webhook_url"
          error={f.webhook_url}
          hint={webhookMasked ? `Set (${webhookMasked}). Leave empty to keep it.` : "Coffer POSTs JSON here when a backup fails or backups go stale. Stored encrypted."}
        >
          <Input id="webhook_url" name="webhook_url" type="url" placeholder="https://…" autoComplete="off" invalid={!!f.webhook_url} />
        </Field>
        {webhookMasked && (
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" name="clear_webhook" className="h-4 w-4" /> Remove the webhook
          </label>
        )}
        <Button type="submit" busy={pending} busyLabel="Saving…">
          Save alerts
        </Button>
      </form>
      {webhookMasked && (
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
