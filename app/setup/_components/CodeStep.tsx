"use client";

import { useEffect, useState, type FormEvent } from "react";
import { Button, Card, Field, Input } from "@/components/ui";
import { postJson } from "./setupApi";

/** Step 1: the one-time code the server printed, so only whoever started it sets it up. */
export function CodeStep({ token, onToken, onVerified }: { token: string; onToken: (t: string) => void; onVerified: () => void }) {
  const [busy, setBusy] = useState(false);
  const [fields, setFields] = useState<Record<string, string>>({});
  // Until React has hydrated, a press would be the browser's own GET submit: the setup code in the URL.
  const [ready, setReady] = useState(false);
  useEffect(() => setReady(true), []);

  async function submitCode(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setBusy(true);
    setFields({});
    const { ok, data } = await postJson("/api/setup/verify", { token });
    setBusy(false);
    if (ok) onVerified();
    else setFields({ token: data?.error?.message ?? "That setup code is not right." });
  }

  return (
    <Card>
      <form onSubmit={submitCode} method="post" className="space-y-4" noValidate>
        <p className="text-sm text-zinc-600 dark:text-zinc-400">
          Step 1 of 2. Only the person who started the server should set it up, so Coffer asks for the one-time setup
          code it printed in the server log.
        </p>
        <Field
          label="Setup code"
          htmlFor="token"
          error={fields.token}
          hint={
            <>
              Look for the line <q>Coffer is not set up yet</q> in the server log, or read it from{" "}
              <code>data/setup-token</code>.
            </>
          }
        >
          <Input
            id="token"
            name="token"
            autoComplete="off"
            autoFocus
            placeholder="XXXX-XXXX-XXXX"
            value={token}
            onChange={(e) => onToken(e.target.value)}
            invalid={!!fields.token}
            aria-describedby={fields.token ? "token-error" : undefined}
            className="font-mono tracking-wider"
          />
        </Field>
        <Button type="submit" busy={busy} busyLabel="Checking…" disabled={!ready} className="w-full">
          Continue
        </Button>
      </form>
    </Card>
  );
}
