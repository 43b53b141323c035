"use client";

import { useState, type FormEvent } from "react";
import { Alert, Button, LockIcon } from "@/components/ui";
import { S3ConnectionFields, readConnection, type S3Connection } from "@/components/backup/S3ConnectionFields";
import { KeyInput, hasKey, type RestoreKey } from "@/components/restore/KeyInput";
import { RestoreFlow, type Preview } from "@/components/restore/RestoreFlow";
import { PointInTimePicker } from "@/components/restore/PointInTimePicker";
import { formatBytes, formatDateTime } from "@/lib/format";
import { postJson } from "./setupApi";
import type { OffsiteSnapshot } from "@/lib/backup/offsite/repository";

type Connection = S3Connection;

/** The bucket's continuous copy (lib/continuous/offsite-restore.ts offsiteContinuousWindow). */
interface ContinuousCopy {
  first_restorable_at: string;
  last_restorable_at: string;
  encrypted: boolean;
}

/** What is being restored: a snapshot, or a second of the continuous copy. */
type Choice = { snapshot: OffsiteSnapshot } | { at: string };
const choiceKey = (c: Choice) => ("snapshot" in c ? c.snapshot.name : `at:${c.at}`);

/**
 * Wizard → Restore from backup → From S3-compatible storage: the bucket's
 * address and keys (used for these requests only, never stored here), the
 * snapshots in it and the window of its continuous copy (any second of it),
 * then the usual preview and confirmation.
 */
export function OffsiteRestore({ token }: { token: string }) {
  const [conn, setConn] = useState<Connection | null>(null);
  const [snapshots, setSnapshots] = useState<OffsiteSnapshot[] | null>(null);
  const [location, setLocation] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [continuous, setContinuous] = useState<ContinuousCopy | null>(null);
  const [chosen, setChosen] = useState<Choice | null>(null);
  const [key, setKey] = useState<RestoreKey>({});
  const [preview, setPreview] = useState<Preview | null>(null);

  async function connect(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const c: Connection = readConnection(f);
    setBusy("connect");
    setError(null);
    setFields({});
    const { ok, data } = await postJson("/api/setup/offsite/snapshots", { connection: c }, token);
    setBusy(null);
    if (!ok) {
      setError(data?.error?.message ?? "The bucket could not be read.");
      const fl: Record<string, string> = {};
      for (const [k, v] of Object.entries((data?.error?.fields ?? {}) as Record<string, string>)) fl[k.replace(/^connection\./, "")] = v;
      setFields(fl);
      return;
    }
    setConn(c);
    setLocation(data.location);
    setSnapshots(data.snapshots);
    setContinuous(data.continuous ?? null);
  }

  async function stage(c: Choice, k: RestoreKey) {
    if (!conn) return;
    const encrypted = "snapshot" in c ? c.snapshot.encrypted : !!continuous?.encrypted;
    if (encrypted && !hasKey(k)) {
      setChosen(c);
      return;
    }
    setBusy(choiceKey(c));
    setError(null);
    const what = "snapshot" in c ? { snapshot: c.snapshot.name } : { at: c.at };
    const { ok, data } = await postJson("/api/setup/offsite/restore", { connection: conn, ...what, ...k }, token);
    setBusy(null);
    if (ok) {
      setPreview(data as Preview);
      setChosen(null);
    } else {
      setError(data?.error?.message ?? ("snapshot" in c ? "The snapshot could not be fetched." : "That point in time could not be rebuilt."));
      if (/^KEY_/.test(data?.error?.code ?? "")) setChosen(c);
    }
  }

  if (preview) return <RestoreFlow mode={{ kind: "setup", token }} staged={preview} onCancel={() => setPreview(null)} />;

  if (!snapshots) {
    return (
      <form onSubmit={connect} className="space-y-3" noValidate data-testid="offsite-connect">
        {error && <Alert>{error}</Alert>}
        <S3ConnectionFields fields={fields} prefixHint="As set on the old server, e.g. home." />
        <Button type="submit" busy={busy === "connect"} busyLabel="Reading the bucket…">
          Show backups in this bucket
        </Button>
      </form>
    );
  }

  return (
    <div className="space-y-3" data-testid="offsite-pick">
      {error && <Alert>{error}</Alert>}
      {continuous && (
        <section className="space-y-3 rounded-lg border border-emerald-700/30 p-3" data-testid="offsite-continuous" aria-labelledby="offsite-continuous-title">
          <h3 id="offsite-continuous-title" className="text-sm font-medium">
            Every change, to the second
          </h3>
          <p className="text-sm text-zinc-600 dark:text-zinc-400">
            This bucket also keeps every change from <strong>{formatDateTime(continuous.first_restorable_at)}</strong> to{" "}
            <strong>{formatDateTime(continuous.last_restorable_at)}</strong>
            {continuous.encrypted && (
              <>
                {" "}
                (<LockIcon /> encrypted)
              </>
            )}
            . Restore the newest second to lose the least, or an earlier one to undo a mistake.
          </p>
          <PointInTimePicker first={continuous.first_restorable_at} last={continuous.last_restorable_at} id="offsite-at">
            {(at) => (
              <Button type="button" disabled={!at || busy !== null} busy={busy === `at:${at}`} busyLabel="Rebuilding that moment…" onClick={() => at && stage({ at }, {})}>
                Restore to this time
              </Button>
            )}
          </PointInTimePicker>
        </section>
      )}
      <p className="text-sm text-zinc-600 dark:text-zinc-400">
        {snapshots.length
          ? `Snapshots in ${location}, newest first. Pick one: Coffer fetches it and checks every file before anything changes.`
          : continuous
            ? `There are no snapshots in ${location} yet, only the continuous copy above.`
            : `There are no Coffer snapshots in ${location}. Check the folder (prefix).`}
      </p>
      <ul className={snapshots.length ? "divide-y divide-zinc-200 rounded-lg border border-zinc-200 dark:divide-zinc-800 dark:border-zinc-800" : "hidden"}>
        {snapshots.map((s) => (
          <li key={s.name} className="flex flex-wrap items-center justify-between gap-2 px-3 py-2" data-testid="offsite-snapshot">
            <span className="text-sm">
              <span className="block font-medium">{formatDateTime(s.created_at)}</span>
              <span className="block text-xs text-zinc-600 dark:text-zinc-400">
                {s.documents === null ? "? documents" : s.documents === 1 ? "1 document" : `${s.documents} documents`} · {formatBytes(s.total_bytes)}
                {s.encrypted && (
                  <>
                    {" · "}
                    <LockIcon /> encrypted
                  </>
                )}
                {!s.verified && <span className="text-red-700 dark:text-red-400"> · incomplete or damaged</span>}
              </span>
            </span>
            <Button type="button" variant="secondary" disabled={!s.verified || busy !== null} busy={busy === s.name} busyLabel="Fetching and checking…" onClick={() => stage({ snapshot: s }, {})}>
              Restore this one
            </Button>
          </li>
        ))}
      </ul>
      {chosen && (
        <div className="space-y-3 rounded-md border border-zinc-200 p-3 dark:border-zinc-800">
          <p className="text-sm">
            {"snapshot" in chosen ? "This snapshot is encrypted." : `The continuous copy is encrypted (restoring ${formatDateTime(chosen.at)}).`} Give its key: the recovery kit, the AGE-SECRET-KEY-1… line, or the passphrase.
          </p>
          <KeyInput id="offsite-key" onChange={setKey} />
          <Button type="button" disabled={!hasKey(key)} busy={busy === choiceKey(chosen)} busyLabel="Fetching and checking…" onClick={() => stage(chosen, key)}>
            Restore with this key
          </Button>
        </div>
      )}
      <Button type="button" variant="ghost" onClick={() => setSnapshots(null)}>
        Use another bucket
      </Button>
    </div>
  );
}
