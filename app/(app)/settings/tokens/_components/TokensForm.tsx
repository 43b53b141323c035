"use client";

import { useActionState } from "react";
import { Alert, Button, Field, Input, Select } from "@/components/ui";
import type { ActionState } from "@/app/_server/actions";
import { createTokenAction, revokeTokenAction } from "../actions";

/** Settings → API tokens: create one (shown once) with a name, scopes and an expiry. */
export function CreateTokenForm({ scopes }: { scopes: Record<string, string> }) {
  const [state, action, pending] = useActionState<ActionState, FormData>(createTokenAction, {});
  const v = state.values ?? {};
  return (
    <form action={action} className="space-y-4" data-testid="create-token">
      <div className="grid gap-4 sm:grid-cols-2">
        <Field label="Name" htmlFor="token-name" error={state.fields?.name} hint="Where it is used, e.g. “nightly pull on the NAS”.">
          <Input id="token-name" name="name" defaultValue={v.name ?? ""} maxLength={80} autoComplete="off" />
        </Field>
        <Field label="Expires" htmlFor="token-expires">
          <Select id="token-expires" name="expires" defaultValue={v.expires ?? "90"}>
            <option value="30">In 30 days</option>
            <option value="90">In 90 days</option>
            <option value="365">In a year</option>
            <option value="never">Never</option>
          </Select>
        </Field>
      </div>
      <fieldset className="space-y-2">
        <legend className="text-sm font-semibold">May</legend>
        {Object.entries(scopes).map(([k, label]) => (
          <label key={k} className="flex items-center gap-2 text-sm">
            <input type="checkbox" name={`scope_${k}`} defaultChecked={v[`scope_${k}`] === "on"} className="h-4 w-4 accent-emerald-700" />
            <span>
              {label} <code className="text-xs text-zinc-600 dark:text-zinc-400">{k}</code>
            </span>
          </label>
        ))}
        <p className="text-xs text-zinc-600 dark:text-zinc-400">No token can restore, change settings or manage users: those need an admin signed in.</p>
      </fieldset>
      <Button type="submit" busy={pending} busyLabel="Creating…">
        Create token
      </Button>
      {state.error && <Alert>{state.error}</Alert>}
      {state.ok && state.secret && (
        <div className="space-y-2 rounded-md border border-emerald-700/40 p-3" data-testid="new-token">
          <Alert tone="success">{state.message}</Alert>
          <code className="block select-all break-all rounded bg-zinc-100 p-2 font-mono text-xs dark:bg-zinc-800" data-testid="token-value">
            {state.secret}
          </code>
        </div>
      )}
    </form>
  );
}

export function RevokeTokenButton({ id, name }: { id: number; name: string }) {
  const [state, action, pending] = useActionState<ActionState, FormData>(revokeTokenAction, {});
  return (
    <form action={action} className="inline">
      <input type="hidden" name="id" value={id} />
      <Button type="submit" variant="secondary" busy={pending} busyLabel="Revoking…" aria-label={`Revoke ${name}`}>
        Revoke
      </Button>
      {state.error && <span className="ml-2 text-sm text-red-700 dark:text-red-400">{state.error}</span>}
    </form>
  );
}
