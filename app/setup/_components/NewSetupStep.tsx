"use client";

import { useState, type FormEvent } from "react";
import { useRouter } from "next/navigation";
import { signIn } from "next-auth/react";
import { Alert, Button, Card, Field, Input } from "@/components/ui";
import { browserTimeZone, postJson } from "./setupApi";
import { keyProven, type NewKey } from "@/components/backup/recoveryKit";
import { KeyShownOnce } from "@/components/backup/KeyShownOnce";
import { S3ConnectionFields, readConnection } from "@/components/backup/S3ConnectionFields";

type Errors = Record<string, string>;

/** New setup: the first admin, and how this instance protects itself (schedule, encryption, a bucket). */
export function NewSetupStep({ token, onBack }: { token: string; onBack: () => void }) {
  const router = useRouter();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Errors>({});
  const [protect, setProtect] = useState(true);
  const [encrypt, setEncrypt] = useState(false);
  const [newKey, setNewKey] = useState<NewKey | null>(null);
  const [keyProof, setKeyProof] = useState("");
  const [offsite, setOffsite] = useState(false);

  async function toggleEncrypt(on: boolean) {
    setEncrypt(on);
    if (!on || newKey) return;
    const res = await fetch("/api/setup/encryption-key", { method: "POST", headers: { "x-setup-token": token } }).catch(() => null);
    const data = res ? await res.json().catch(() => null) : null;
    if (!res?.ok || !data) {
      setEncrypt(false);
      setFields({ encrypt: data?.error?.message ?? "Could not make a key. Try again." });
      return;
    }
    setNewKey(data as NewKey);
  }

  async function submitNew(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const input = {
      token,
      instance_name: String(form.get("instance_name") ?? ""),
      username: String(form.get("username") ?? ""),
      password: String(form.get("password") ?? ""),
      backup: {
        enabled: protect,
        time_zone: browserTimeZone(),
        encryption_recipients: encrypt && newKey ? [newKey.recipient] : [],
        ...(offsite ? { offsite: readConnection(form) } : {}),
      },
    };
    const errs: Errors = {};
    if (encrypt && !keyProven(newKey, keyProof)) errs.key_proof = "Type the last 6 characters of the key, to show you saved it.";
    if (input.password !== String(form.get("password2") ?? "")) errs.password2 = "The two passwords are not the same.";
    if (input.password.length < 10) errs.password = "Use at least 10 characters.";
    if (Object.keys(errs).length) {
      setFields(errs);
      return;
    }
    setBusy(true);
    setError(null);
    setFields({});
    const { ok, data } = await postJson("/api/setup", input);
    if (!ok) {
      setBusy(false);
      // The bucket's fields are named as in the form (backup.offsite.bucket → bucket).
      const fl: Errors = {};
      for (const [k, v] of Object.entries((data?.error?.fields ?? {}) as Errors)) fl[k.replace(/^backup\.offsite\./, "")] = v;
      setFields(fl);
      setError(data?.error?.fields ? null : (data?.error?.message ?? "Setup failed."));
      return;
    }
    const res = await signIn("credentials", { redirect: false, username: input.username, password: input.password });
    if (res?.error) {
      router.push("/login");
      return;
    }
    router.push("/documents");
    router.refresh();
  }

  return (
    <Card>
      <form onSubmit={submitNew} className="space-y-4" noValidate>
        <h2 className="font-semibold">New setup</h2>
        {error && <Alert>{error}</Alert>}
        <Field label="Instance name" htmlFor="instance_name" error={fields.instance_name} hint="Shown in the header, e.g. “Family documents”.">
          <Input id="instance_name" name="instance_name" required defaultValue="Coffer" invalid={!!fields.instance_name} />
        </Field>
        <Field label="Admin username" htmlFor="username" error={fields.username} hint="Letters, digits and . _ @ -">
          <Input id="username" name="username" required autoComplete="username" invalid={!!fields.username} />
        </Field>
        <Field label="Password" htmlFor="password" error={fields.password} hint="At least 10 characters.">
          <Input id="password" name="password" type="password" required autoComplete="new-password" invalid={!!fields.password} />
        </Field>
        <Field label="Password again" htmlFor="password2" error={fields.password2}>
          <Input id="password2" name="password2" type="password" required autoComplete="new-password" invalid={!!fields.password2} />
        </Field>
        <fieldset className="space-y-3 rounded-md border border-zinc-200 p-3 dark:border-zinc-800" data-testid="protect">
          <legend className="px-1 text-sm font-semibold">Protect this instance</legend>
          <label className="flex items-start gap-2 text-sm">
            <input type="checkbox" name="protect" checked={protect} onChange={(e) => setProtect(e.target.checked)} className="mt-0.5 h-4 w-4 accent-emerald-700" />
            <span>
              Back up every day at 03:00 ({browserTimeZone()}), keeping the last 7 days, 4 weeks and 6 months. Each week Coffer also restores the newest backup into a scratch directory to prove it works.
            </span>
          </label>
          {fields["backup.time_zone"] && <p className="text-sm text-red-700 dark:text-red-400">{fields["backup.time_zone"]}</p>}
          <label className="flex items-start gap-2 text-sm">
            <input type="checkbox" name="encrypt" checked={encrypt} onChange={(e) => void toggleEncrypt(e.target.checked)} className="mt-0.5 h-4 w-4 accent-emerald-700" />
            <span>
              Encrypt backups (recommended)
              <span className="block text-xs text-zinc-600 dark:text-zinc-400">A backup holds every document and this instance&apos;s keys. Encrypted, a copy on a USB disk or in a bucket is unreadable without the key you keep.</span>
            </span>
          </label>
          {fields.encrypt && <Alert>{fields.encrypt}</Alert>}
          {encrypt && newKey && (
            <div className="space-y-2 rounded-md border border-emerald-700/40 p-3" data-testid="wizard-key">
              <KeyShownOnce newKey={newKey} proof={keyProof} onProof={setKeyProof} error={fields.key_proof} hint="This shows you saved it." />
            </div>
          )}
          <label className="flex items-start gap-2 text-sm">
            <input type="checkbox" name="offsite" checked={offsite} onChange={(e) => setOffsite(e.target.checked)} className="mt-0.5 h-4 w-4 accent-emerald-700" />
            <span>
              Also send backups to S3-compatible storage
              <span className="block text-xs text-zinc-600 dark:text-zinc-400">
                A copy off this server (Backblaze B2, Cloudflare R2, Wasabi, MinIO, AWS…): a failed disk then takes only the data, not its backups. Coffer tests the bucket before it finishes.
              </span>
            </span>
          </label>
          {offsite && (
            <div className="space-y-3 rounded-md border border-zinc-200 p-3 dark:border-zinc-800" data-testid="wizard-offsite">
              <S3ConnectionFields fields={fields} prefixHint="A folder of its own for this instance, e.g. home." />
            </div>
          )}
          <p className="text-xs text-zinc-600 dark:text-zinc-400">Change any of this later in Settings → Backup; Settings → Health lists what is still missing.</p>
        </fieldset>
        <div className="flex gap-2">
          <Button type="button" variant="secondary" onClick={onBack} disabled={busy}>
            Back
          </Button>
          <Button type="submit" busy={busy} busyLabel="Creating…" className="flex-1">
            Create admin and finish
          </Button>
        </div>
      </form>
    </Card>
  );
}
