import type { Instance } from "../../instance";
import { damagedVerifications, forgetVerification, overdueVerifications, saveVerification, verificationCounts, verificationRows, type ProofObject, type VerificationRow } from "./verifications-table";
import type { DB } from "../../db/connection";
import { AppError } from "../../errors";
import { currentSettings } from "../../settings/store";
import { resolveBackupDir } from "../local/directory";
import { LocalDirTarget } from "../local/target";
import { archiveNameScope, isArchiveName } from "../format/tables";
import { encryptionFrom } from "../format/encryption";
import { locationFromSettings } from "../offsite/location";
import { alert, type SendOptions } from "../alerts";
import { startRun, finishRun, writtenHashes } from "../runs";
import type { ObjectCheck } from "../offsite/checks";
import { proveStoredArchive } from "../local/prove";
import { readText, writeText } from "../../db/job-state";
import { DAY_MS } from "../../util/time";

// ------------------------------------------------------ rolling verification --

/** A slice runs this often; each re-reads at least twice its share of the period, oldest-checked first. */
export const SLICE_EVERY_MS = 3600 * 1000;
/** A slice reads at least this much (so a small instance is re-checked far more often than its period). */
export const MIN_SLICE_BYTES = 256 * 1024 * 1024;


export interface SliceResult {
  checked: VerificationRow[];
  /** Objects found damaged in this slice that were not known to be (an alert went out for them). */
  newlyFailed: VerificationRow[];
  /** The bucket could not be reached: its objects were left as they were, not marked damaged. */
  offsiteError: string | null;
  bytes: number;
  budget: number;
}


function record(db: DB, o: ProofObject, at: string, check: ObjectCheck): VerificationRow {
  const ok = check.ok === true ? 1 : check.ok === false ? 0 : null;
  const error = check.ok === false ? check.error : check.ok === null ? check.note : null;
  return saveVerification(db, { ...o, verified_at: at, ok, error });
}



function verifyPeriodDays(inst: Instance): number {
  return currentSettings(inst.paths.settings).backup.proof.verify_period_days;
}

/**
 * One slice of rolling verification: every stored object (local archives;
 * offsite snapshots and blobs when offsite is on) is listed, and those
 * checked longest ago (never-checked first) are re-read until the slice's
 * budget is spent. The budget is twice the period's share per slice, so
 * every byte is re-read within the period with certainty, whatever luck
 * would say; `all` re-reads everything now (coffer verify --all). Takes no
 * lock: an object retention removes meanwhile is dropped, not failed.
 */
export async function verifySlice(
  inst: Instance,
  opts: { now?: () => Date; all?: boolean; log?: (line: string) => void; alertOptions?: SendOptions; minSliceBytes?: number } = {},
): Promise<SliceResult> {
  const now = opts.now ?? (() => new Date());
  // settings.yaml read once for the slice: where, how encrypted and over what period.
  const backup = currentSettings(inst.paths.settings).backup;
  const target = new LocalDirTarget(resolveBackupDir(inst, backup.directory));
  const objects: ProofObject[] = (await target.list()).filter((o) => isArchiveName(o.name)).map((o) => ({ target: "local", kind: "archive", object: o.name, size: o.size }));

  let loc;
  try {
    loc = backup.offsite.enabled ? locationFromSettings(inst, backup.offsite) : null;
  } catch {
    loc = null; // offsite settings that do not parse: Health says so already
  }
  let offsiteError: string | null = null;
  // The AWS SDK is loaded only when offsite is configured.
  let offsite: (typeof import("../offsite/repository") & typeof import("../offsite/checks")) | null = null;
  let repo: import("../offsite/repository").OffsiteRepo | null = null;
  if (loc) {
    offsite = { ...(await import("../offsite/repository")), ...(await import("../offsite/checks")) };
    repo = offsite.openRepository(loc);
    try {
      for (const o of await repo.snapshots.list()) if (isArchiveName(o.name)) objects.push({ target: "offsite", kind: "snapshot", object: `snapshots/${o.name}`, size: o.size });
      for (const o of await repo.blobs.list()) objects.push({ target: "offsite", kind: "blob", object: `blobs/${o.name}`, size: o.size });
    } catch (err) {
      offsiteError = (err as Error).message;
    }
  }
  try {
    const db = inst.db;
    const known = new Map(verificationRows(db).map((r) => [`${r.target}\0${r.object}`, r]));
    const listed = new Set(objects.map((o) => `${o.target}\0${o.object}`));
    // Rows of objects that are gone (retention, a manual delete); offsite rows stay while the bucket cannot be listed.
    for (const [k, r] of known) {
      if (!listed.has(k) && !(r.target === "offsite" && (offsiteError || !loc))) forgetVerification(db, r.target, r.object);
    }
    const due = objects
      .filter((o) => !(o.target === "offsite" && offsiteError))
      .map((o) => ({ o, last: known.get(`${o.target}\0${o.object}`)?.verified_at ?? "" }))
      .sort((a, b) => (a.last === b.last ? (a.o.object < b.o.object ? -1 : 1) : a.last < b.last ? -1 : 1));
    const total = objects.reduce((a, o) => a + o.size, 0);
    const budget = opts.all ? Infinity : Math.max(opts.minSliceBytes ?? MIN_SLICE_BYTES, Math.ceil((2 * total * SLICE_EVERY_MS) / (backup.proof.verify_period_days * DAY_MS)));

    const hashes = writtenHashes(db);
    const encryption = encryptionFrom(inst, backup.encryption);
    const checked: VerificationRow[] = [];
    const newlyFailed: VerificationRow[] = [];
    let bytes = 0;
    for (const { o } of due) {
      if (bytes >= budget) break;
      let check: ObjectCheck;
      try {
        if (o.target === "local") {
          const problem = await proveStoredArchive(target, o.object, { sha256: hashes.get(o.object) ?? null }, encryption?.to);
          if (problem && !(await target.stat(o.object))) continue; // removed while being read
          check = problem ? { ok: false, error: `${o.object}: ${problem}` } : { ok: true };
        } else {
          const [kind, name] = [o.kind as "snapshot" | "blob", o.object.slice(o.object.indexOf("/") + 1)];
          check = await offsite!.checkOffsiteObject(repo!, inst.secretKey, kind, name, { haveBlob: (blob) => listed.has(`offsite\0blobs/${blob}`), listedBytes: o.size });
          if (check.ok === false && !(await (kind === "snapshot" ? repo!.snapshots : repo!.blobs).stat(name))) continue; // removed by retention meanwhile
        }
      } catch (err) {
        if (o.target === "offsite" && err instanceof AppError) {
          offsiteError = err.message; // the bucket went away mid-slice: nothing is marked damaged for that
          break;
        }
        check = { ok: false, error: `${o.object}: ${(err as Error).message}` };
      }
      const before = known.get(`${o.target}\0${o.object}`);
      const row = record(db, o, now().toISOString(), check);
      checked.push(row);
      bytes += o.size;
      if (row.ok === 0 && before?.ok !== 0) newlyFailed.push(row);
    }
    // Only a slice that read something counts: with nothing stored yet, the next tick looks again (a listing), so the first backup is re-checked within minutes, not an hour.
    if (checked.length) writeText(db, "verify_last_slice_at", now().toISOString());
    if (newlyFailed.length) {
      const message = `${newlyFailed.length} stored backup object(s) failed verification: ${newlyFailed.map((r) => r.error).join("; ")}`;
      for (const r of newlyFailed) {
        const runId = startRun(db, opts.all ? "cli" : "schedule", archiveNameScope(r.object.slice(r.object.lastIndexOf("/") + 1)) ?? "full", "verify");
        finishRun(db, runId, { status: "failed", file: r.object, bytes: r.size, error: r.error, detail: { target: r.target, kind: r.kind } });
      }
      opts.log?.(message);
      await alert(inst, "verify.failed", message, null, opts.alertOptions);
    }
    return { checked, newlyFailed, offsiteError, bytes, budget };
  } finally {
    if (repo) offsite!.closeRepository(repo);
  }
}

export interface VerificationSummary {
  period_days: number;
  last_slice_at: string | null;
  objects: number;
  /** Objects whose last check is older than the period, or that were never checked. */
  overdue: number;
  failed: VerificationRow[];
  unverifiable: number;
}


/**
 * What Health says about rolling verification, from the recorded rows: counts
 * in SQL (a bucket can hold tens of thousands of blobs, and /api/health is
 * polled), only the damaged rows loaded.
 */
export function verificationSummary(inst: Instance, now = Date.now()): VerificationSummary {
  const db = inst.db;
  const periodDays = verifyPeriodDays(inst);
  const cutoff = new Date(now - periodDays * DAY_MS).toISOString();
  const counts = verificationCounts(db);
  return {
    period_days: periodDays,
    last_slice_at: readText(db, "verify_last_slice_at") || null,
    objects: counts.reduce((a, c) => a + c.n, 0),
    overdue: overdueVerifications(db, cutoff),
    failed: damagedVerifications(db),
    unverifiable: counts.filter((c) => c.ok === null).reduce((a, c) => a + c.n, 0),
  };
}
