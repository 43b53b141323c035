import fs from "node:fs";
import type { Instance } from "./instance";
import { APP_VERSION } from "./version";
import { healthReasons, healthStatus } from "./health";
import { lockHolder } from "./lock";
import { verificationCounts } from "./backup/proof/verifications-table";
import { lastDrill } from "./backup/proof/drills-table";
import { lastSuccess, runOutcomes } from "./backup/runs";
import { drillOutcomes } from "./backup/proof/drills-table";
import { readText } from "./db/job-state";
import { continuousStatus } from "./continuous/status";

/**
 * Prometheus text exposition (version 0.0.4) of what an operator watches:
 * backups per target (last success, duration, size, runs by status),
 * retention deletions, verification and drills, documents and vault size,
 * staged restores, the lock's holder age and health. Names follow
 * Prometheus conventions: base units, _total for counters, _seconds/_bytes.
 */
export function renderMetrics(inst: Instance, now = Date.now()): string {
  const out: string[] = [];
  const metric = (name: string, type: "gauge" | "counter", help: string, samples: [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
      out.push(`${name}${l.length ? `{${l.join(",")}}` : ""} ${Number.isFinite(value) ? value : "NaN"}`);
    }
  };
  const seconds = (iso: string | null | undefined) => (iso ? Date.parse(iso) / 1000 : NaN);
  const db = inst.db;
  const targets = ["local", "offsite"] as const;

  metric("coffer_info", "gauge", "Coffer's version, as a label.", [[{ version: APP_VERSION }, 1]]);
  const status = healthStatus(healthReasons(inst, now));
  metric("coffer_health_status", "gauge", "Health: 0 ok, 1 degraded, 2 failing (as /api/health).", [[{}, { ok: 0, degraded: 1, failing: 2 }[status]]]);

  // A successful run has finished; the filter only narrows the type.
  const lasts = targets.flatMap((t) => {
    const r = lastSuccess(db, t);
    return r?.finished_at ? [[t, { ...r, finished_at: r.finished_at }] as const] : [];
  });
  metric("coffer_backup_last_success_timestamp_seconds", "gauge", "When the last successful backup of each target finished (Unix time).", lasts.map(([t, r]) => [{ target: t }, seconds(r.finished_at)]));
  metric("coffer_backup_last_duration_seconds", "gauge", "How long the last successful backup of each target took.", lasts.map(([t, r]) => [{ target: t }, (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000]));
  metric("coffer_backup_last_size_bytes", "gauge", "Bytes the last successful backup wrote (local) or sent (offsite).", lasts.map(([t, r]) => [{ target: t }, r.bytes ?? 0]));
  const runs = runOutcomes(db);
  metric("coffer_backup_runs_total", "counter", "Backup runs by target and outcome (verify: objects found damaged).", runs.map((r) => [{ target: r.target, status: r.status }, r.n]));
  const pruned = db.prepare("SELECT count(*) FROM audit_log WHERE action = 'backup.prune'").pluck().get() as number;
  metric("coffer_retention_deletions_total", "counter", "Stored backups deleted by retention.", [[{}, pruned]]);

  const counts = verificationCounts(db);
  const byResult = (target: string, ok: 0 | 1 | null) => counts.find((c) => c.target === target && c.ok === ok)?.n ?? 0;
  metric(
    "coffer_verification_objects",
    "gauge",
    "Stored objects by the result of their last re-check (ok, damaged, unverifiable).",
    targets.flatMap((t) => [
      [{ target: t, result: "ok" }, byResult(t, 1)],
      [{ target: t, result: "damaged" }, byResult(t, 0)],
      [{ target: t, result: "unverifiable" }, byResult(t, null)],
    ] as [Record<string, string>, number][]),
  );
  const continuous = continuousStatus(inst, now).filter((c) => c.enabled);
  metric("coffer_continuous_lag_seconds", "gauge", "Seconds of changes not yet in the continuous replica (0: it holds every change).", continuous.filter((c) => c.lag_seconds !== null).map((c) => [{ location: c.location }, c.lag_seconds!]));
  metric("coffer_continuous_window_start_timestamp_seconds", "gauge", "The earliest second a restore to a point in time can reach (Unix time).", continuous.filter((c) => c.first_restorable_at).map((c) => [{ location: c.location }, seconds(c.first_restorable_at)]));
  const slice = readText(db, "verify_last_slice_at");
  metric("coffer_verification_last_slice_timestamp_seconds", "gauge", "When the last verification slice ran (Unix time).", slice ? [[{}, seconds(slice)]] : []);

  const proven = lastDrill(db, "success");
  metric("coffer_drill_last_success_timestamp_seconds", "gauge", "When the last restore drill passed (Unix time).", proven ? [[{}, seconds(proven.finished_at)]] : []);
  metric("coffer_drill_last_recovery_seconds", "gauge", "Measured recovery time (stage and apply) of the last drill that passed.", proven ? [[{}, proven.seconds ?? NaN]] : []);
  const drills = drillOutcomes(db);
  metric("coffer_drills_total", "counter", "Restore drills by outcome.", drills.map((d) => [{ status: d.status }, d.n]));

  metric("coffer_documents", "gauge", "Documents in the vault (not in the trash).", [[{}, db.prepare("SELECT count(*) FROM documents WHERE deleted_at IS NULL").pluck().get() as number]]);
  metric("coffer_documents_trashed", "gauge", "Documents in the trash, kept until trash.retention_days.", [[{}, db.prepare("SELECT count(*) FROM documents WHERE deleted_at IS NOT NULL").pluck().get() as number]]);
  const vault = db.prepare("SELECT coalesce(sum(size), 0) FROM (SELECT sha256, max(size) AS size FROM documents GROUP BY sha256)").pluck().get() as number;
  metric("coffer_vault_size_bytes", "gauge", "Bytes of document content stored (each distinct file once).", [[{}, vault]]);
  const staged = fs.existsSync(inst.paths.staging) ? fs.readdirSync(inst.paths.staging).length : 0;
  metric("coffer_staged_restores", "gauge", "Restores staged and waiting to be applied or to expire.", [[{}, staged]]);
  const holder = lockHolder(inst.paths.root);
  metric("coffer_lock_held_seconds", "gauge", "How long the instance lock has been held (0 when free), with what holds it.", [[{ purpose: holder?.purpose ?? "" }, holder ? (now - Date.parse(holder.since)) / 1000 : 0]]);
  return out.join("\n") + "\n";
}
