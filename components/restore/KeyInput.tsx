"use client";

import { useState } from "react";
import { Field, Input, LockIcon } from "@/components/ui";

/** The key for an encrypted backup, as the person gave it; sent with that one request, never stored. */
export interface RestoreKey {
  identity?: string;
  passphrase?: string;
}

export const hasKey = (k: RestoreKey) => !!(k.identity?.trim() || k.passphrase);

/** Headers for a raw-body upload (the passphrase base64, since headers cannot carry every character). */
export function keyHeaders(k: RestoreKey): Record<string, string> {
  const h: Record<string, string> = {};
  if (k.identity?.trim()) h["x-coffer-identity"] = k.identity.trim();
  if (k.passphrase) h["x-coffer-passphrase-b64"] = btoa(String.fromCharCode(...new TextEncoder().encode(k.passphrase)));
  return h;
}

/** The AGE-SECRET-KEY-1… lines of a recovery kit or key file, comma-joined. */
function identitiesIn(text: string): string {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => /^AGE-SECRET-KEY-1/i.test(l))
    .join(",");
}

/**
 * Three ways to give the key of an encrypted backup: the recovery kit file,
 * the pasted AGE-SECRET-KEY-1… line, or the passphrase.
 */
export function KeyInput({ id, onChange, error }: { id: string; onChange: (k: RestoreKey) => void; error?: string | null }) {
  const [key, setKey] = useState<RestoreKey>({});
  const [fileNote, setFileNote] = useState<string | null>(null);
  const update = (k: RestoreKey) => {
    setKey(k);
    onChange(k);
  };
  async function readKit(files: FileList | null) {
    const f = files?.[0];
    if (!f) return;
    const ids = identitiesIn(await f.text());
    setFileNote(ids ? `Key read from ${f.name}.` : `${f.name} holds no line starting AGE-SECRET-KEY-1.`);
    update({ identity: ids || undefined });
  }
  return (
    <div className="space-y-3 rounded-md border border-zinc-200 p-3 dark:border-zinc-800" data-testid="key-input">
      <p className="text-sm font-medium"><LockIcon /> This backup is encrypted. Give its key (used for this restore only, never stored):</p>
      <Field label="Recovery kit or key file" htmlFor={`${id}-kit`} hint={fileNote ?? "coffer-recovery-kit.txt, or a file from age-keygen."}>
        <input
          id={`${id}-kit`}
          type="file"
          accept=".txt,text/plain"
          onChange={(e) => readKit(e.target.files)}
          className="block w-full text-sm file:mr-3 file:rounded-md file:border-0 file:bg-zinc-200 file:px-3 file:py-1.5 file:text-sm dark:file:bg-zinc-700"
        />
      </Field>
      <Field label="or paste the key" htmlFor={`${id}-identity`}>
        <Input
          id={`${id}-identity`}
          value={key.identity ?? ""}
          onChange={(e) => update({ identity: e.target.value || undefined })}
          placeholder="AGE-SECRET-KEY-1…"
          autoComplete="off"
          spellCheck={false}
          className="font-mono text-xs"
        />
      </Field>
      <Field label="or the passphrase" htmlFor={`${id}-passphrase`} error={error}>
        <Input id={`${id}-passphrase`} type="password" autoComplete="off" value={key.passphrase ?? ""} onChange={(e) => update({ passphrase: e.target.value || undefined })} invalid={!!error} />
      </Field>
    </div>
  );
}
