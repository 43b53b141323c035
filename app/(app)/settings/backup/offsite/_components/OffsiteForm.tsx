"use client";

import { useActionState, useState } from "react";
import { Alert, Button, Card, Field, Input } from "@/components/ui";
import { adoptOffsite, saveOffsite, testOffsiteConnection } from "../actions";
import type { ActionState } from "@/app/_server/actions";
import { formatDateTime } from "@/lib/format";
import type { RepositoryAddress } from "@/lib/backup/offsite/location";

export interface OffsiteView extends RepositoryAddress {
  enabled: boolean;
  hasSecret: boolean;
  /** The last offsite part of a backup run. */
  last: { status: string; at: string; error: string | null; file: string | null } | null;
}

const check = "h-4 w-4 accent-emerald-700";

/**
 * Settings → Backup → Offsite. One form, two buttons: Test connection tries
 * the form as it is (write, read back and delete a probe object); Save stores
 * it. The secret is never sent back to the browser: an empty field keeps it.
 */
export function OffsiteForm({ offsite }: { offsite: OffsiteView }) {
  const [state, action, saving] = useActionState<ActionState, FormData>(saveOffsite, {});
  const [testState, testAction, testing] = useActionState<ActionState, FormData>(testOffsiteConnection, {});
  const [adoptState, adoptAction, adopting] = useActionState<ActionState, FormData>(adoptOffsite, {});
  const f = { ...(testState.fields ?? {}), ...(state.fields ?? {}) };
  // Controlled: React resets a form after each action, and Test connection must not wipe what was typed.
  const [form, setForm] = useState({
    endpoint: offsite.endpoint,
    region: offsite.region,
    bucket: offsite.bucket,
    prefix: offsite.prefix,
    access_key_id: offsite.access_key_id,
    secret_access_key: "",
    enabled: offsite.enabled,
    path_style: offsite.path_style,
    checksum_compat: offsite.checksum_compat,
  });
  const text = (k: "endpoint" | "region" | "bucket" | "prefix" | "access_key_id" | "secret_access_key") => ({
    name: k,
    value: form[k],
    onChange: (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value }),
  });
  const box = (k: "enabled" | "path_style" | "checksum_compat") => ({
    name: k,
    checked: form[k],
    onChange: (e: { target: { checked: boolean } }) => setForm({ ...form, [k]: e.target.checked }),
  });
  const otherInstance = !adoptState.ok && /belongs to another Coffer instance/.test(`${offsite.last?.error ?? ""} ${testState.error ?? ""}`);

  return (
    <Card className="space-y-4">
      <div data-testid="offsite">
        <p className="text-sm text-zinc-600 dark:text-zinc-400">
          A copy in S3-compatible storage (AWS S3, Backblaze B2, Cloudflare R2, Wasabi, MinIO, Garage…) survives the loss of this server&apos;s disk. After the first backup,
          only new documents are sent. With encryption on, the bucket holds only encrypted objects under names that reveal nothing.
        </p>
        {offsite.last && (
          <p className="mt-2 text-sm" data-testid="offsite-last">
            Last offsite copy:{" "}
            <span className={offsite.last.status === "success" ? "font-medium text-emerald-700 dark:text-emerald-400" : "font-medium text-red-700 dark:text-red-400"}>
              {offsite.last.status === "success" ? "succeeded" : "failed"}
            </span>{" "}
            {formatDateTime(offsite.last.at)}
            {offsite.last.error ? ` — ${offsite.last.error.replace(/^Offsite: /, "")}` : ""}
          </p>
        )}
      </div>
      <form className="space-y-4" noValidate>
        <label className="flex items-center gap-2 text-sm font-medium">
          <input type="checkbox" {...box("enabled")} className={check} /> Send every backup offsite
        </label>
        <div className="grid gap-4 md:grid-cols-2">
          <Field label="Endpoint" htmlFor="endpoint" error={f.endpoint} hint="The storage's S3 address, e.g. https://s3.eu-central-003.backblazeb2.com">
            <Input id="endpoint" {...text("endpoint")} placeholder="https://" invalid={!!f.endpoint} spellCheck={false} />
          </Field>
          <Field label="Region" htmlFor="region" hint="us-east-1 if your provider does not name one.">
            <Input id="region" {...text("region")} spellCheck={false} />
          </Field>
          <Field label="Bucket" htmlFor="bucket" error={f.bucket} hint="Create it first in your provider's console.">
            <Input id="bucket" {...text("bucket")} invalid={!!f.bucket} spellCheck={false} />
          </Field>
          <Field label="Folder in the bucket (prefix)" htmlFor="prefix" error={f.prefix} hint="One per Coffer instance, e.g. home.">
            <Input id="prefix" {...text("prefix")} invalid={!!f.prefix} spellCheck={false} />
          </Field>
          <Field label="Access key ID" htmlFor="access_key_id" error={f.access_key_id}>
            <Input id="access_key_id" {...text("access_key_id")} autoComplete="off" invalid={!!f.access_key_id} spellCheck={false} />
          </Field>
          <Field
            label="Secret access key"
            htmlFor="secret_access_key"
            error={f.secret_access_key}
            hint={offsite.hasSecret ? "Saved (encrypted on this server). Leave empty to keep it." : "Stored encrypted with this instance's key."}
          >
            <Input
              id="secret_access_key"
              {...text("secret_access_key")}
              type="password"
              autoComplete="new-password"
              placeholder={offsite.hasSecret ? "••••••••" : ""}
              invalid={!!f.secret_access_key}
            />
          </Field>
        </div>
        <div className="space-y-1">
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" {...box("path_style")} className={check} /> Path-style addresses (MinIO, Garage, most self-hosted stores)
          </label>
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" {...box("checksum_compat")} className={check} /> Checksum compatibility (for stores that reject the newer
            CRC32 upload checksums; AWS works either way)
          </label>
        </div>
        {testState.error && <Alert>{testState.error}</Alert>}
        {testState.ok && testState.message && <Alert tone="success">{testState.message}</Alert>}
        {state.error && <Alert>{state.error}</Alert>}
        {state.ok && state.message && <Alert tone="success">{state.message}</Alert>}
        <div className="flex flex-wrap gap-2">
          <Button type="submit" formAction={action} busy={saving} busyLabel="Saving…">
            Save offsite settings
          </Button>
          <Button type="submit" variant="secondary" formAction={testAction} busy={testing} busyLabel="Testing…">
            Test connection
          </Button>
        </div>
      </form>
      {otherInstance && (
        <form action={adoptAction} className="space-y-2 rounded-md border border-amber-600/50 p-3" data-testid="adopt">
          <p className="text-sm">
            This bucket folder holds another Coffer instance&apos;s backups. If this server replaces that one (you restored it here), adopt the repository: this instance
            takes it over, keeps its snapshots, and the old server&apos;s backups there stop.
          </p>
          <Button type="submit" variant="secondary" busy={adopting}>
            Adopt the repository
          </Button>
        </form>
      )}
      {adoptState.error && <Alert>{adoptState.error}</Alert>}
      {adoptState.ok && adoptState.message && <Alert tone="success">{adoptState.message}</Alert>}
    </Card>
  );
}
