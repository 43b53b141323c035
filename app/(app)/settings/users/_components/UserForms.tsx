"use client";

import { useActionState, useState } from "react";
import { Alert, Button, Field, Input, Select } from "@/components/ui";
import { addMember, removeMember, resetMemberPassword } from "../actions";
import type { ActionState } from "@/app/_server/actions";

export function AddMemberForm() {
  const [state, action, pending] = useActionState<ActionState, FormData>(addMember, {});
  return (
    <form action={action} className="space-y-4 rounded-lg border border-zinc-200 bg-white p-5 dark:border-zinc-800 dark:bg-zinc-900">
      <h2 className="font-semibold">Add a user</h2>
      {state.error && !state.fields && <Alert>{state.error}</Alert>}
      {state.ok && state.message && <Alert tone="success">{state.message}</Alert>}
      <div className="grid gap-4 sm:grid-cols-3">
        <Field label="Username" htmlFor="new-username" error={state.fields?.username}>
          <Input id="new-username" name="username" required autoComplete="off" defaultValue={state.values?.username} invalid={!!state.fields?.username} />
        </Field>
        <Field label="Password" htmlFor="new-password" error={state.fields?.password} hint="At least 10 characters.">
          <Input id="new-password" name="password" type="password" required autoComplete="new-password" invalid={!!state.fields?.password} />
        </Field>
        <Field label="Role" htmlFor="new-role">
          <Select id="new-role" name="role" defaultValue={state.values?.role ?? "member"}>
            <option value="member">Member</option>
            <option value="admin">Admin</option>
          </Select>
        </Field>
      </div>
      <Button type="submit" busy={pending} busyLabel="Adding…">
        Add user
      </Button>
    </form>
  );
}

export function UserRowActions({ userId, username, documents }: { userId: number; username: string; documents: number }) {
  const [resetState, resetAction, resetting] = useActionState<ActionState, FormData>(resetMemberPassword, {});
  const [removeState, removeAction, removing] = useActionState<ActionState, FormData>(removeMember, {});
  const [open, setOpen] = useState(false);
  return (
    <div className="flex w-full flex-col gap-2 sm:w-auto sm:items-end">
      <div className="flex gap-2">
        <Button variant="secondary" onClick={() => setOpen((o) => !o)} aria-expanded={open}>
          Reset password
        </Button>
        <form
          action={removeAction}
          onSubmit={(e) => {
            const msg = documents
              ? `Remove ${username}? Their ${documents} document(s) will be moved to you.`
              : `Remove ${username}?`;
            if (!window.confirm(msg)) e.preventDefault();
          }}
        >
          <input type="hidden" name="userId" value={userId} />
          <Button type="submit" variant="danger" busy={removing}>
            Remove
          </Button>
        </form>
      </div>
      {open && (
        <form action={resetAction} className="flex w-full flex-wrap items-end gap-2 sm:w-auto">
          <input type="hidden" name="userId" value={userId} />
          <Field label={`New password for ${username}`} htmlFor={`pw-${userId}`} error={resetState.fields?.password}>
            <Input id={`pw-${userId}`} name="password" type="password" autoComplete="new-password" required />
          </Field>
          <Button type="submit" busy={resetting}>
            Save
          </Button>
        </form>
      )}
      {resetState.ok && <Alert tone="success">{resetState.message}</Alert>}
      {(resetState.error && !resetState.fields) || removeState.error ? <Alert>{resetState.error ?? removeState.error}</Alert> : null}
    </div>
  );
}
