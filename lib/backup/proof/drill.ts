import fs from "node:fs";
import { finishDrill, lastDrill, startDrill, type Drill, type DrillDetail, type DrillOutcome } from "./drills-table";
import path from "node:path";
import crypto from "node:crypto";
import type { Instance } from "../../instance";
import { openInstance, closeInstance } from "../../instance";
import type { DB } from "../../db/connection";
import { AppError } from "../../errors";
import { runDoctor } from "../../doctor/index";
import type { AgeKeys } from "../../crypto/age";
import { currentSettings } from "../../settings/store";
import { listStoredBackups, openStoredBackup } from "../local/repository";
import { stageArchive, discardStaged, type RestorePreview } from "../restore/staging";
import { applyRestore } from "../restore/apply";
import { archiveEncryption } from "../format/encryption";
import { offsiteLocation } from "../offsite/location";
import { isEncryptedArchiveName, isScope, scopeHasVault, scopeInfo, type Scope } from "../format/tables";
import { verificationRows } from "./verifications-table";
import { alert, type SendOptions } from "../alerts";
import { removeWorkDir } from "../workdir";
import { systemActor } from "../../audit/log";
import { DAY_MS } from "../../util/time";
import { continuousStatus } from "../../continuous/status";
import { stagePointInTime } from "../../continuous/pitr";



/** Why a drill could not run: said and recorded as skipped, never passed off as a failure or a success. */
class DrillSkipped extends Error {}

interface Candidate {
  source: "local" | "offsite";
  name: string;
  keys?: AgeKeys;
}

/**
 * The newest backup a drill can prove: a local archive that verified when
 * written and has not failed a re-check since, else the newest complete
 * offsite snapshot. One encrypted to recipients cannot be opened here (the
 * identity is kept offline), so it is passed over, and said so if nothing else is left.
 */
async function chooseBackup(inst: Instance): Promise<Candidate> {
  const encryption = archiveEncryption(inst);
  const passphrase = encryption && "passphrase" in encryption.to ? encryption.to.passphrase : undefined;
  const damaged = new Set(verificationRows(inst.db).filter((r) => r.ok === 0).map((r) => r.object));
  // A drill proves a whole instance comes back: database-only backups would fail the deep check on their missing files.
  const stored = (await listStoredBackups(inst)).filter((b) => b.verified === true && isScope(b.scope) && scopeInfo(b.scope).restorable && !damaged.has(b.name));
  const locals = stored.filter((b) => scopeHasVault(b.scope as Scope));
  let passedOver = 0;
  for (const b of locals) {
    if (!isEncryptedArchiveName(b.name)) return { source: "local", name: b.name };
    if (b.encryption?.mode === "passphrase" && passphrase) return { source: "local", name: b.name, keys: { passphrase } };
    passedOver++;
  }
  const loc = offsiteLocation(inst);
  if (loc) {
    const { openRepository, closeRepository, listOffsiteSnapshots } = await import("../offsite/repository");
    const repo = openRepository(loc);
    try {
      for (const s of (await listOffsiteSnapshots(repo)).filter((x) => x.verified && !damaged.has(`snapshots/${x.name}`))) {
        if (s.scope !== "full") continue;
        if (!s.encrypted) return { source: "offsite", name: s.name };
        if (passphrase) return { source: "offsite", name: s.name, keys: { passphrase } };
        passedOver++;
      }
    } finally {
      closeRepository(repo);
    }
  }
  if (!passedOver && stored.length) throw new DrillSkipped("The stored backups hold the database only; a drill restores a full backup. Set the job's scope to full, or turn offsite on.");
  if (passedOver) throw new DrillSkipped("Every backup is encrypted to age recipients whose identity Coffer does not hold, so it cannot restore one on its own. Prove one by hand with coffer verify FILE --identity KIT.");
  throw new DrillSkipped("There is no verified backup to restore yet.");
}

/** Rows per table of the restored database, for the ones the archive's meta counted. */
function tableCounts(db: DB, tables: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tables) {
    const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(t);
    if (exists) out[t] = db.prepare(`SELECT count(*) FROM "${t.replace(/"/g, '""')}"`).pluck().get() as number;
  }
  return out;
}

function countVaultFiles(vault: string): number {
  if (!fs.existsSync(vault)) return 0;
  let n = 0;
  for (const d of fs.readdirSync(vault)) n += fs.readdirSync(path.join(vault, d)).length;
  return n;
}

const secondsSince = (t: number) => Math.round((performance.now() - t) / 10) / 100;

/**
 * A restore drill (docs/architecture.md#locks-and-jobs): the newest verified backup is
 * restored into a scratch data directory under data/.tmp through the real
 * pipeline (stage, validate, apply, migrations), opened, deep-checked by the
 * doctor, and its row and document-file counts compared with the archive's
 * meta; then the scratch directory is deleted. The live instance is only
 * read (its settings, to find and open the backup). Recorded with its
 * timings; a failure alerts. A drill that cannot run (no backup it can open,
 * not enough disk for the staging) is recorded as skipped, with the reason.
 */
export async function runDrill(
  inst: Instance,
  opts: { trigger: Drill["trigger"]; log?: (line: string) => void; alertOptions?: SendOptions; /** How far back the replica's restore goes (a minute; tests pass less). */ continuousAgoMs?: number },
): Promise<Drill> {
  const db = inst.db;
  const id = startDrill(db, opts.trigger);
  const finish = (r: DrillOutcome): Drill => finishDrill(db, id, r);
  const scratchRoot = path.join(inst.paths.tmp, `drill-${crypto.randomBytes(6).toString("hex")}`);
  let scratch: Instance | null = null;
  let chosen: Candidate | null = null;
  const t0 = performance.now();
  try {
    chosen = await chooseBackup(inst);
    fs.mkdirSync(scratchRoot, { recursive: true, mode: 0o700 });
    scratch = openInstance(path.join(scratchRoot, "data"));
    let preview: RestorePreview;
    if (chosen.source === "local") {
      preview = await stageArchive(scratch, await openStoredBackup(inst, chosen.name), { keys: chosen.keys, owner: "drill" });
    } else {
      const { openRepository, closeRepository } = await import("../offsite/repository");
      const { stageOffsiteSnapshot } = await import("../offsite/pull");
      const repo = openRepository(offsiteLocation(inst)!);
      try {
        preview = await stageOffsiteSnapshot(scratch, repo, chosen.name, { keys: chosen.keys, owner: "drill" });
      } finally {
        closeRepository(repo);
      }
    }
    const stage_s = secondsSince(t0);
    const checked = await applyAndCheck(scratch, preview);
    scratch = checked.restored;
    const { restored, counts, files, apply_s } = checked;
    const continuous = await drillContinuous(inst, scratchRoot, opts.continuousAgoMs ?? CONTINUOUS_DRILL_AGO_MS);
    const detail: DrillDetail = {
      stage_s,
      apply_s,
      check_s: checked.check_s,
      total_s: secondsSince(t0),
      documents: counts.documents ?? 0,
      accounts: counts.users ?? 0,
      document_files: files,
      schema_version: restored.db.pragma("user_version", { simple: true }) as number,
      ...(continuous ? { continuous } : {}),
    };
    const seconds = Math.round((stage_s + apply_s) * 100) / 100;
    opts.log?.(`restore drill passed: ${chosen.name} (${chosen.source}) restored in ${seconds} s`);
    return finish({ status: "success", source: chosen.source, archive: chosen.name, seconds, detail: JSON.stringify(detail) });
  } catch (err) {
    // A restore that was applied but failed its checks: its instance is the one to close.
    if ((err as { restored?: Instance }).restored) scratch = (err as { restored: Instance }).restored;
    // Staging refuses what would not fit with the disk margin kept (507) or past COFFER_RESTORE_MAX_BYTES (413).
    // A passphrase changed since the backup was made: nothing is wrong with the backup, Coffer just cannot open it.
    const otherKey = err instanceof AppError && err.code === "KEY_MISMATCH";
    const skipped = err instanceof DrillSkipped || otherKey || (err instanceof AppError && (err.code === "INSUFFICIENT_STORAGE" || err.code === "TOO_LARGE"));
    const message = otherKey
      ? "The newest backup was encrypted with another passphrase than the one in settings now; a drill can open it after the next backup."
      : skipped && err instanceof AppError
        ? `Not enough free disk for a drill: ${err.message}`
        : (err as Error).message;
    const drill = finish({ status: skipped ? "skipped" : "failed", source: chosen?.source ?? null, archive: chosen?.name ?? null, error: message });
    opts.log?.(`restore drill ${skipped ? "skipped" : "FAILED"}: ${message}`);
    if (!skipped) await alert(inst, "drill.failed", `Restore drill of ${chosen?.name ?? "the newest backup"} failed: ${message}`, lastDrill(db, "success")?.finished_at ?? null, opts.alertOptions);
    return drill;
  } finally {
    if (scratch) closeInstance(scratch);
    await removeWorkDir(scratchRoot);
  }
}


/**
 * Apply a staged restore to the scratch instance and check it as its users
 * would find it: the doctor's deep check, and every table's rows and the
 * vault's files as the backup counted them.
 */
async function applyAndCheck(scratch: Instance, preview: RestorePreview): Promise<{ restored: Instance; apply_s: number; check_s: number; counts: Record<string, number>; files: number }> {
  const t0 = performance.now();
  let restored: Instance;
  try {
    restored = (await applyRestore(scratch, preview.id, systemActor("drill"))).instance;
  } catch (err) {
    discardStaged(scratch, preview.id);
    throw err;
  }
  const apply_s = secondsSince(t0);
  const t1 = performance.now();
  const report = await runDoctor(restored, { deep: true });
  const bad = report.findings.filter((f) => f.severity === "fail");
  if (bad.length) throw Object.assign(new Error(`the restored instance fails the doctor's deep check: ${bad.map((f) => f.message).join(" ")}`), { restored });
  // The restore itself adds to the audit log and the meta table; every other table must hold what the backup counted.
  const counts = tableCounts(restored.db, Object.keys(preview.tables).filter((t) => t !== "audit_log" && t !== "meta"));
  const differ = Object.entries(preview.tables).filter(([t, n]) => t in counts && counts[t] !== n);
  if (differ.length) throw Object.assign(new Error(`the restored database's row counts differ from the backup's meta: ${differ.map(([t, n]) => `${t} ${counts[t]} (meta ${n})`).join(", ")}`), { restored });
  const files = countVaultFiles(restored.paths.vault);
  if (preview.vault.objects && files !== preview.vault.objects) throw Object.assign(new Error(`the restored vault holds ${files} document files; the backup's meta says ${preview.vault.objects}`), { restored });
  return { restored, apply_s, check_s: secondsSince(t1), counts, files };
}

/** How far back the drill restores from the continuous replica: a recent second the replica has surely written. */
const CONTINUOUS_DRILL_AGO_MS = 60_000;

/**
 * With continuous protection on, the drill also restores the instance as it
 * was a minute ago from the replica into a scratch directory of its own and
 * checks it like the archive. A replica too young for that is said, not
 * failed; one that does not restore fails the drill.
 */
async function drillContinuous(inst: Instance, scratchRoot: string, agoMs: number): Promise<DrillDetail["continuous"] | null> {
  if (!currentSettings(inst.paths.settings).backup.continuous.enabled) return null;
  const [local] = continuousStatus(inst);
  // Nothing changed since the replica's newest second: that second is the instance as it was a minute ago.
  const last = local.last_restorable_at ? Date.parse(local.last_restorable_at) : Infinity;
  const at = new Date(Math.min(Math.floor((Date.now() - agoMs) / 1000) * 1000, last));
  if (local.problem) return { at: at.toISOString(), skipped: local.problem };
  if (!local.first_restorable_at || Date.parse(local.first_restorable_at) > at.getTime()) return { at: at.toISOString(), skipped: "the replica does not reach back a minute yet" };
  const root = path.join(scratchRoot, "continuous");
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  let scratch: Instance | null = openInstance(path.join(root, "data"));
  const t0 = performance.now();
  try {
    const preview = await stagePointInTime(inst, at, { into: scratch, owner: "drill" });
    const checked = await applyAndCheck(scratch, preview);
    scratch = checked.restored;
    return { at: at.toISOString(), seconds: secondsSince(t0), documents: checked.counts.documents ?? 0 };
  } catch (err) {
    if ((err as { restored?: Instance }).restored) scratch = (err as { restored: Instance }).restored;
    throw new Error(`the continuous replica did not restore ${at.toISOString()}: ${(err as Error).message}`);
  } finally {
    closeInstance(scratch);
  }
}

/** Drills are due every `drill_every_days` (0: off), counted from the last one that ran to an end. */
export function drillDue(inst: Instance, now: number): boolean {
  const every = currentSettings(inst.paths.settings).backup.proof.drill_every_days;
  if (!every) return false;
  const last = lastDrill(inst.db);
  return !last || now - Date.parse(last.started_at) >= every * DAY_MS;
}

