"use client";

import { useActionState } from "react";
import { Alert, Button } from "@/components/ui";
import { runDeepCheckNow } from "@/app/(app)/settings/health/actions";
import type { ActionState } from "@/app/_server/actions";

export function DeepCheckButton() {
  const [state, action, pending] = useActionState<ActionState, FormData>(runDeepCheckNow, {});
  return (
    <form action={action} className="flex flex-wrap items-center gap-3">
      <Button type="submit" busy={pending} busyLabel="Reading every file…">
        Run deep check
      </Button>
      {state.ok && <Alert tone="success">{state.message}</Alert>}
      {state.error && <Alert>{state.error}</Alert>}
    </form>
  );
}
