"use client";

import { useActionState, useEffect, useState } from "react";
import { Alert, Button, Card, Field, Input, LockIcon } from "@/components/ui";
import { saveEncryption } from "../actions";
import type { ActionState } from "@/app/_server/actions";
import { keyProven, type NewKey } from "@/components/backup/recoveryKit";
import { KeyShownOnce } from "@/components/backup/KeyShownOnce";

export interface EncryptionView {
  mode: "off" | "recipients" | "passphrase";
  recipients: string[];
}

const short = (r: string) => `${r.slice(0, 12)}…${r.slice(-6)}`;

/**
 * Settings → Backup → Encryption. A new key is made on the server and shown
 * here once; encryption is turned on only after the admin proves they kept
 * it (the last characters), and then only its public half is saved.
 */
export function EncryptionForm({ current }: { current: EncryptionView }) {
  const [state, action, pending] = useActionState<ActionState, FormData>(saveEncryption, {});
  const [newKey, setNewKey] = useState<NewKey | null>(null);
  const [keyError, setKeyError] = useState<string | null>(null);
  const [proof, setProof] = useState("");
  const [keepOthers, setKeepOthers] = useState(true);
  const [advanced, setAdvanced] = useState(false);
  const f = state.fields ?? {};
  // Saved: the key leaves the screen for good.
  useEffect(() => {
    if (state.ok) {
      setNewKey(null);
      setProof("");
    }
  }, [state]);

  async function generate() {
    setKeyError(null);
    setProof("");
    const res = await fetch("/api/settings/backup/encryption/key", { method: "POST" }).catch(() => null);
    const data = res ? await res.json().catch(() => null) : null;
    if (!res?.ok || !data) return setKeyError(data?.error?.message ?? "Could not make a key. Try again.");
    setNewKey(data as NewKey);
  }

  const proven = keyProven(newKey, proof);
  const recipientsAfter = newKey ? [...(keepOthers && current.mode === "recipients" ? current.recipients : []), newKey.recipient] : [];

  return (
    <div data-testid="encryption">
    <Card className="space-y-4">
      <div className="space-y-1">
        {current.mode === "off" && (
          <Alert tone="warn">Backups are not encrypted: whoever has a copy (a synced folder, a USB disk, a bucket) can read every document and this instance&apos;s keys.</Alert>
        )}
        {current.mode === "recipients" && (
          <p className="text-sm" data-testid="encryption-status">
            <LockIcon /> New backups are age files (.tar.gz.age) encrypted for{" "}
            {current.recipients.map((r, i) => (
              <span key={r} className="font-mono text-xs">
                {i > 0 && ", "}
                {short(r)}
              </span>
            ))}
            . Restoring one needs the matching key from a recovery kit; Coffer keeps only the public half.
          </p>
        )}
        {current.mode === "passphrase" && (
          <p className="text-sm" data-testid="encryption-status">
            <LockIcon /> New backups are age files encrypted with a passphrase. It is stored on this server, encrypted with keys/config.key: it protects copies of backups kept elsewhere, not a backup next to this server&apos;s data directory.
          </p>
        )}
      </div>

      {!newKey && (
        <div className="space-y-2">
          <Button type="button" onClick={generate}>
            {current.mode === "recipients" ? "Generate another key" : "Generate a key and encrypt backups"}
          </Button>
          <p className="text-xs text-zinc-600 dark:text-zinc-400">The key is shown once, with a recovery kit to download. Coffer never stores it.</p>
          {keyError && <Alert>{keyError}</Alert>}
        </div>
      )}

      {newKey && (
        <form action={action} className="space-y-3 rounded-md border border-emerald-700/40 p-4" data-testid="new-key">
          <KeyShownOnce newKey={newKey} proof={proof} onProof={setProof} hint="This shows you saved it. Encryption starts only then." />
          {current.mode === "recipients" && (
            <label className="flex items-center gap-2 text-sm">
              <input type="checkbox" checked={keepOthers} onChange={(e) => setKeepOthers(e.target.checked)} /> Keep encrypting for the other keys too
            </label>
          )}
          <input type="hidden" name="mode" value="recipients" />
          <input type="hidden" name="recipients" value={recipientsAfter.join("\n")} />
          <div className="flex flex-wrap gap-2">
            <Button type="submit" disabled={!proven} busy={pending}>
              Encrypt backups for this key
            </Button>
            <Button type="button" variant="ghost" onClick={() => setNewKey(null)}>
              Cancel
            </Button>
          </div>
        </form>
      )}

      {state.error && <Alert>{state.error}</Alert>}
      {state.ok && state.message && <Alert tone="success">{state.message}</Alert>}

      <button type="button" className="text-sm text-emerald-800 underline dark:text-emerald-400" onClick={() => setAdvanced(!advanced)} aria-expanded={advanced}>
        {advanced ? "Hide other options" : "Other options: your own keys, a passphrase, or off"}
      </button>
      {advanced && (
        <div className="grid gap-4 md:grid-cols-3">
          <form action={action} className="space-y-2">
            <input type="hidden" name="mode" value="recipients" />
            <Field label="Public keys (age1…), one per line" htmlFor="recipients" error={f.recipients} hint="For example a second admin's key from age-keygen.">
              <textarea id="recipients" name="recipients" rows={3} defaultValue={current.recipients.join("\n")} className="w-full rounded-md border border-zinc-300 bg-white p-2 font-mono text-xs dark:border-zinc-700 dark:bg-zinc-900" />
            </Field>
            <Button type="submit" variant="secondary" busy={pending}>
              Encrypt for these keys
            </Button>
          </form>
          <form action={action} className="space-y-2">
            <input type="hidden" name="mode" value="passphrase" />
            <Field label="Passphrase" htmlFor="passphrase" error={f.passphrase} hint="Stored encrypted on this server, so scheduled backups can use it.">
              <Input id="passphrase" name="passphrase" type="password" autoComplete="new-password" invalid={!!f.passphrase} />
            </Field>
            <Field label="Passphrase again" htmlFor="passphrase_confirm" error={f.passphrase_confirm}>
              <Input id="passphrase_confirm" name="passphrase_confirm" type="password" autoComplete="new-password" invalid={!!f.passphrase_confirm} />
            </Field>
            <Button type="submit" variant="secondary" busy={pending}>
              Use this passphrase
            </Button>
          </form>
          <form action={action} className="space-y-2">
            <input type="hidden" name="mode" value="off" />
            <p className="text-sm text-zinc-600 dark:text-zinc-400">New backups would be plain .tar.gz files. Backups already made stay as they are.</p>
            <Button type="submit" variant="danger" busy={pending} disabled={current.mode === "off"}>
              Turn encryption off
            </Button>
          </form>
        </div>
      )}
    </Card>
    </div>
  );
}
