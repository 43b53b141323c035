"use client";

import { useActionState } from "react";
import { Alert, Button } from "@/components/ui";
import type { ActionState } from "@/app/_server/actions";

/** A button that runs one long job on the server (a deep check, a restore drill) and shows how it ended, where it was pressed. */
export function JobButton({ action: run, label, busyLabel, variant }: { action: (s: ActionState, f: FormData) => Promise<ActionState>; label: string; busyLabel: string; variant?: "secondary" }) {
  const [state, action, pending] = useActionState<ActionState, FormData>(run, {});
  return (
    <form action={action} className="flex flex-wrap items-center gap-3">
      <Button type="submit" busy={pending} busyLabel={busyLabel} variant={variant}>
        {label}
      </Button>
      {state.ok && <Alert tone="success">{state.message}</Alert>}
      {state.error && <Alert>{state.error}</Alert>}
    </form>
  );
}
