"use client";

import { useEffect, useRef, useState, type FormEvent } from "react";
import { Alert, Button, Field, Input, ProgressBar } from "@/components/ui";
import { uploadWithProgress } from "@/components/upload/uploadWithProgress";
import { KeyInput, hasKey, keyHeaders, type RestoreKey } from "./KeyInput";
import { formatBytes, formatDateTime } from "@/lib/format";
import type { RestorePreview } from "@/lib/backup/restore/staging";
import { SCOPE_TABLE, isScope } from "@/lib/backup/format/tables";
import { describeChanges } from "@/lib/backup/restore/changes-words";

export type Preview = RestorePreview;

type Mode = { kind: "setup"; token: string } | { kind: "admin" };

function authHeaders(mode: Mode): Record<string, string> {
  return mode.kind === "setup" ? { "x-setup-token": mode.token } : {};
}

export function PreviewCard({ preview }: { preview: Preview }) {
  const rows: [string, string][] = [
    ["Backup made", formatDateTime(preview.created_at)],
    ["Made by", `Coffer ${preview.app_version} (${preview.trigger})`],
    ["Contents", isScope(preview.scope) ? SCOPE_TABLE[preview.scope].contents : preview.scope],
    ["Accounts", String(preview.tables.users ?? "—")],
    ["Documents", String(preview.tables.documents ?? "—")],
    ["Document files", `${preview.vault.objects} (${formatBytes(preview.vault.bytes)})`],
    ["Audit entries", String(preview.tables.audit_log ?? "—")],
  ];
  return (
    <div className="space-y-3" data-testid="restore-preview">
      <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
        {rows.map(([k, v]) => (
          <div key={k} className="contents">
            <dt className="text-zinc-600 dark:text-zinc-400">{k}</dt>
            <dd className="font-medium">{v}</dd>
          </div>
        ))}
      </dl>
      {preview.changes && (
        <div className="space-y-1" data-testid="restore-changes">
          <h4 className="text-sm font-semibold">Compared with this instance now</h4>
          <ul className="list-disc space-y-1 pl-5 text-sm">
            {describeChanges(preview.changes).map((line) => (
              <li key={line} className="break-words">
                {line}
              </li>
            ))}
          </ul>
        </div>
      )}
      {preview.upgrade && (
        <Alert tone="info">
          {preview.upgrade}
        </Alert>
      )}
      {preview.warnings.map((w) => (
        <Alert key={w} tone="warn">
          {w}
        </Alert>
      ))}
    </div>
  );
}

/**
 * Choose a backup, upload it with progress, see what it holds, restore it.
 * `staged` lets a caller hand in a preview made elsewhere (a stored backup).
 */
export function RestoreFlow({ mode, staged, onCancel }: { mode: Mode; staged?: Preview | null; onCancel?: () => void }) {
  const input = useRef<HTMLInputElement>(null);
  const [progress, setProgress] = useState<{ loaded: number; total: number } | null>(null);
  const [checking, setChecking] = useState(false);
  const [preview, setPreview] = useState<Preview | null>(staged ?? null);
  const [error, setError] = useState<string | null>(null);
  const [applying, setApplying] = useState(false);
  const [applyError, setApplyError] = useState<{ message: string; field?: string } | null>(null);

  useEffect(() => setPreview(staged ?? null), [staged]);

  // An encrypted backup (.age, or one the server says needs a key) waits for its key before it is uploaded.
  const [pending, setPending] = useState<File | null>(null);
  const [key, setKey] = useState<RestoreKey>({});

  async function choose(files: FileList | null) {
    const file = files?.[0];
    if (!file) return;
    setError(null);
    setPreview(null);
    if (file.name.endsWith(".age")) {
      setPending(file);
      return;
    }
    setPending(null);
    await upload(file, {});
  }

  async function upload(file: File, k: RestoreKey) {
    setError(null);
    setProgress({ loaded: 0, total: file.size });
    setChecking(false);
    try {
      const url = mode.kind === "setup" ? "/api/setup/restore" : "/api/settings/backup/restore";
      const p = await uploadWithProgress<Preview>(url, file, {
        contentType: "application/octet-stream",
        headers: { ...authHeaders(mode), ...keyHeaders(k) },
        onProgress: (loaded) => {
          setProgress({ loaded, total: file.size });
          if (loaded >= file.size) setChecking(true);
        },
      });
      setPreview(p);
      setPending(null);
    } catch (err) {
      const e = err as Error & { code?: string };
      setError(e.message);
      // A key was missing or did not fit: keep the file and ask for the key, then try again.
      if (e.code && /^KEY_/.test(e.code)) setPending(file);
      else if (input.current) input.current.value = "";
    } finally {
      setProgress(null);
      setChecking(false);
    }
  }

  async function discard() {
    if (preview) await fetch(`/api/restore/${preview.id}`, { method: "DELETE", headers: authHeaders(mode) }).catch(() => {});
    setPreview(null);
    setApplyError(null);
    if (input.current) input.current.value = "";
    onCancel?.();
  }

  async function apply(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    if (!preview) return;
    const password = String(new FormData(e.currentTarget).get("password") ?? "");
    setApplying(true);
    setApplyError(null);
    const res = await fetch(`/api/restore/${preview.id}/apply`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders(mode) },
      body: JSON.stringify(mode.kind === "admin" ? { password } : {}),
    }).catch(() => null);
    const data = res ? await res.json().catch(() => null) : null;
    if (!res || !res.ok) {
      setApplying(false);
      setApplyError({ message: data?.error?.message ?? "The restore failed.", field: data?.error?.fields?.password ? "password" : undefined });
      return;
    }
    // Everyone signs in again, with the accounts the backup brought back.
    window.location.href = `/login?restored=${encodeURIComponent(data.restored_from)}`;
  }

  const pct = progress && progress.total ? Math.min(100, (progress.loaded / progress.total) * 100) : 0;
  return (
    <div className="space-y-4">
      {!preview && (
        <div className="space-y-3">
          <Field
            label="Backup file"
            htmlFor="restore-file"
            error={error}
            hint="A Coffer backup: coffer_full_….tar.gz, or .tar.gz.age if encrypted (from Download backup, a stored backup, or the coffer CLI)."
          >
            <input
              ref={input}
              id="restore-file"
              type="file"
              accept=".gz,.tgz,.age,application/gzip"
              disabled={!!progress}
              onChange={(e) => choose(e.target.files)}
              aria-invalid={!!error || undefined}
              aria-describedby={error ? "restore-file-error" : undefined}
              className="block w-full text-sm file:mr-3 file:rounded-md file:border-0 file:bg-emerald-700 file:px-3 file:py-1.5 file:text-sm file:font-medium file:text-white hover:file:bg-emerald-800"
            />
          </Field>
          {pending && !progress && (
            <div className="space-y-3">
              <KeyInput id="restore-key" onChange={setKey} />
              <Button type="button" disabled={!hasKey(key)} onClick={() => upload(pending, key)}>
                Upload and check {pending.name}
              </Button>
            </div>
          )}
          {progress && (
            <div className="space-y-1" data-testid="restore-progress">
              <ProgressBar value={pct} label="Uploading the backup" />
              <p className="text-xs text-zinc-600 dark:text-zinc-400" aria-live="polite">
                {checking
                  ? "Uploaded. Checking every file in the backup…"
                  : `Uploading: ${formatBytes(progress.loaded)} of ${formatBytes(progress.total)} (${Math.floor(pct)}%)`}
              </p>
            </div>
          )}
        </div>
      )}
      {preview && (
        <form onSubmit={apply} className="space-y-4">
          <h3 className="font-semibold">This backup checks out. Restore it?</h3>
          <PreviewCard preview={preview} />
          <Alert tone="info">
            {mode.kind === "setup"
              ? "This instance becomes the one in the backup: its accounts, documents and settings. You will sign in with an account from that instance."
              : "The instance is replaced by the backup. A prerestore backup of the current state is saved first, so this can be undone. Everyone, you included, signs in again afterwards."}
          </Alert>
          {mode.kind === "admin" && (
            <Field label="Your password" htmlFor="restore-password" error={applyError?.field ? applyError.message : null} hint="Restoring replaces everything, so Coffer asks for your password again.">
              <Input id="restore-password" name="password" type="password" autoComplete="current-password" required invalid={!!applyError?.field} />
            </Field>
          )}
          {applyError && !applyError.field && <Alert>{applyError.message}</Alert>}
          <div className="flex flex-wrap gap-2">
            <Button type="submit" busy={applying} busyLabel="Restoring… do not close this page">
              Restore this backup
            </Button>
            <Button type="button" variant="secondary" onClick={discard} disabled={applying}>
              {mode.kind === "setup" ? "Choose another file" : "Cancel"}
            </Button>
          </div>
        </form>
      )}
    </div>
  );
}
