"use client";

import { Button, Field, Input } from "@/components/ui";
import { downloadText, recoveryKit, type NewKey } from "./recoveryKit";

/** A new key, shown this once: the identity, the recovery kit to download, and the field where the admin proves they kept it. */
export function KeyShownOnce({ newKey, proof, onProof, error, hint }: { newKey: NewKey; proof: string; onProof: (v: string) => void; error?: string; hint: string }) {
  return (
    <>
      <p className="text-sm font-medium">Your backup key. Save it now: it is shown only once, and Coffer never stores it.</p>
      <code className="block select-all break-all rounded bg-zinc-100 p-2 font-mono text-xs dark:bg-zinc-800" data-testid="identity">
        {newKey.identity}
      </code>
      <Button type="button" variant="secondary" onClick={() => downloadText("coffer-recovery-kit.txt", recoveryKit(newKey))}>
        Download recovery kit
      </Button>
      <Field label="Type the last 6 characters of the key" htmlFor="key_proof" error={error} hint={hint}>
        <Input id="key_proof" value={proof} onChange={(e) => onProof(e.target.value)} autoComplete="off" spellCheck={false} className="max-w-40 font-mono uppercase" invalid={!!error} />
      </Field>
    </>
  );
}
