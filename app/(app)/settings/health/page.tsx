import type { Metadata } from "next";
import Link from "next/link";
import { pageAdmin } from "@/app/_server/auth";
import { lastDoctorReport, quickReport, type DoctorReport } from "@/lib/doctor";
import { PageTitle, Card } from "@/components/ui";
import { JobButton } from "./_components/JobButton";
import { runDeepCheckNow, runDrillNow } from "./actions";
import { formatBytes, formatDateTime } from "@/lib/format";
import { healthReasons, healthStatus, type HealthReason, type HealthStatus } from "@/lib/health";
import type { Instance } from "@/lib/instance";
import { currentSettings } from "@/lib/settings/store";
import { scheduleStatus } from "@/lib/backup/jobs/scheduler";
import { lastSuccess } from "@/lib/backup/runs";
import { proofSummary } from "@/lib/backup/proof/proof";
import { verificationRows, type VerificationRow } from "@/lib/backup/proof/verifications-table";
import { recentDrills, type Drill } from "@/lib/backup/proof/drills-table";
import { continuousStatus, LAG_THRESHOLD_S, type ContinuousLocation } from "@/lib/continuous/status";
import { readOffsiteState } from "@/lib/continuous/offsite-state";

export const metadata: Metadata = { title: "Health" };

const tone = { ok: "text-emerald-700 dark:text-emerald-400", warn: "text-amber-700 dark:text-amber-400", fail: "text-red-700 dark:text-red-400" };

function Report({ title, report, empty }: { title: string; report: DoctorReport | null; empty: string }) {
  return (
    <Card className="space-y-3">
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h2 className="font-semibold">{title}</h2>
        <span className="text-xs text-zinc-600 dark:text-zinc-400">{report ? `Run ${formatDateTime(report.at)}` : empty}</span>
      </div>
      {report && (
        <ul className="divide-y divide-zinc-100 text-sm dark:divide-zinc-800" data-testid={`report-${report.deep ? "deep" : "quick"}`}>
          {report.findings.map((f) => (
            <li key={f.check} className="py-2">
              <span className={`mr-2 inline-block w-12 font-semibold uppercase ${tone[f.severity]}`}>{f.severity}</span>
              <span className="font-mono text-xs">{f.check}</span>
              <span className="ml-2">{f.message}</span>
              {f.examples.length > 0 && (
                <ul className="ml-14 mt-1 list-disc pl-4 text-xs text-zinc-600 dark:text-zinc-400">
                  {f.examples.map((e) => (
                    <li key={e}>{e}</li>
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

const statusText: Record<HealthStatus, { label: string; tone: string; note: string }> = {
  ok: { label: "OK", tone: tone.ok, note: "Nothing needs your attention." },
  degraded: { label: "Degraded", tone: tone.warn, note: "Coffer works, but something below needs your attention." },
  failing: { label: "Failing", tone: tone.fail, note: "Something is broken: /api/health answers 503 until it is fixed." },
};

function Status({ reasons }: { reasons: HealthReason[] }) {
  const s = statusText[healthStatus(reasons)];
  return (
    <Card className="space-y-2" data-testid="health-status">
      <h2 className="font-semibold">
        Status: <span className={s.tone}>{s.label}</span>
      </h2>
      <p className="text-sm text-zinc-600 dark:text-zinc-400">{s.note} Monitors can poll GET /api/health (200 when ok or degraded, 503 when failing).</p>
      {reasons.length > 0 && (
        <ul className="list-disc pl-5 text-sm">
          {reasons.map((r) => (
            <li key={r.code}>
              <span className={r.level === "fail" ? tone.fail : tone.warn}>{r.message}</span>
              {r.fix && r.fix !== "/settings/health" && (
                <Link href={r.fix.replace(/^\/settings\/health(?=#)/, "")} className="ml-2 font-medium text-emerald-800 underline dark:text-emerald-400">
                  {r.fix.startsWith("/settings/health#") ? "See below" : `Fix in Settings → ${r.fix.startsWith("/settings/backup") ? "Backup" : r.fix}`}
                </Link>
              )}
            </li>
          ))}
        </ul>
      )}
    </Card>
  );
}

/** One line of the protection summary: what it is, how it stands, and where it is fixed when it is missing. */
function ProtectionItem({ label, ok, value, fix }: { label: string; ok: boolean; value: string; fix?: { href: string; text: string } }) {
  return (
    <div className="contents">
      <dt className="text-zinc-600 dark:text-zinc-400">{label}</dt>
      <dd>
        <span className={ok ? tone.ok : tone.warn}>{ok ? "✓ " : "✗ "}</span>
        {value}
        {!ok && fix && (
          <Link href={fix.href} className="ml-2 font-medium text-emerald-800 underline dark:text-emerald-400">
            {fix.text}
          </Link>
        )}
      </dd>
    </div>
  );
}

/** A continuous location's line: its window and how far behind it is; the bucket's also how much it sent (what it costs). */
function continuousValue(inst: Instance, c: ContinuousLocation, now: number): string {
  if (!c.enabled) return "Off: the newest backup is the only way back";
  if (c.problem) return c.problem;
  if (c.disk_full) return c.disk_full;
  if (!c.first_restorable_at || !c.last_restorable_at) return "On; the first point to restore to appears within a minute";
  const behind = c.lag_seconds ? `, ${c.lag_seconds} s behind` : ", up to date";
  let sent = "";
  if (c.location === "offsite") {
    const st = readOffsiteState(inst);
    const hours = st ? Math.max(1 / 60, (now - Date.parse(st.counting_since)) / 3600_000) : 0;
    if (st && st.objects_sent) sent = `; ${Math.round(st.objects_sent / hours)} uploads and ${formatBytes(st.bytes_sent / hours)} an hour since this server started`;
  }
  return `Every second from ${formatDateTime(c.first_restorable_at)} to ${formatDateTime(c.last_restorable_at)}${behind}${sent}`;
}

function Protection({ inst }: { inst: Instance }) {
  const job = currentSettings(inst.paths.settings).backup;
  const now = Date.now();
  const schedule = scheduleStatus(inst, now);
  const last = lastSuccess(inst.db);
  const offsiteLast = lastSuccess(inst.db, "offsite");
  const proof = proofSummary(inst, now);
  const proven = proof.last_proven_restore;
  const v = proof.verification;
  return (
    <Card className="space-y-3" id="protection" data-testid="protection">
      <h2 className="font-semibold">Protection</h2>
      <dl className="grid grid-cols-1 gap-x-4 gap-y-1.5 text-sm sm:grid-cols-[auto_1fr]">
        <ProtectionItem
          label="Scheduled backups"
          ok={schedule.enabled && !schedule.error}
          value={schedule.enabled ? `On (${job.schedule}, ${job.time_zone})${schedule.next[0] ? `, next ${formatDateTime(new Date(schedule.next[0]).toISOString())}` : ""}` : "Off"}
          fix={{ href: "/settings/backup/schedule", text: "Turn them on" }}
        />
        <ProtectionItem label="Last successful backup" ok={!!last && !schedule.stale} value={last?.finished_at ? formatDateTime(last.finished_at) : "Never"} fix={{ href: "/settings/backup", text: "Back up now" }} />
        <ProtectionItem
          label="Encrypted"
          ok={job.encryption.mode !== "off"}
          value={job.encryption.mode === "recipients" ? "Yes, to age recipients" : job.encryption.mode === "passphrase" ? "Yes, with a passphrase" : "No: backups hold every document and key in clear"}
          fix={{ href: "/settings/backup/encryption", text: "Encrypt backups" }}
        />
        <ProtectionItem
          label="Offsite"
          ok={job.offsite.enabled && !!offsiteLast}
          value={job.offsite.enabled ? (offsiteLast?.finished_at ? `Yes, last copy ${formatDateTime(offsiteLast.finished_at)}` : "On, no copy yet") : "No: a failed disk takes the data and its backups together"}
          fix={{ href: "/settings/backup/offsite", text: job.offsite.enabled ? "Check offsite" : "Add a bucket" }}
        />
        {continuousStatus(inst, now).map((c) => (
          <ProtectionItem
            key={c.location}
            label={c.location === "local" ? "Continuous, on this server" : "Continuous, in the bucket"}
            ok={c.enabled && !c.problem && !c.disk_full && !!c.last_restorable_at && (c.lag_seconds ?? 0) <= LAG_THRESHOLD_S}
            value={continuousValue(inst, c, now)}
            fix={c.location === "offsite" ? { href: "/settings/backup/offsite", text: "Check offsite" } : { href: "/settings/backup", text: "See Backup" }}
          />
        ))}
        <ProtectionItem
          label="Last proven restore"
          ok={!!proven && !proof.drill_overdue && proof.last_drill?.status !== "failed"}
          value={proven ? `${formatDateTime(proven.at)}, ${proven.archive} (${proven.source}), back in ${proven.seconds} s` : "Never: no restore drill has passed yet"}
          fix={{ href: "#proof", text: "Run a restore drill" }}
        />
        <ProtectionItem
          label="Re-checked"
          ok={v.objects > 0 && v.failed.length === 0 && v.overdue === 0}
          value={
            v.objects === 0
              ? "Not yet: stored backups are re-read within minutes of the first one, then a slice an hour"
              : v.failed.length
                ? `${v.failed.length} of ${v.objects} stored objects failed their last check`
                : `${v.objects} stored objects, every one re-read within ${v.period_days} days${v.overdue ? ` (${v.overdue} overdue)` : ""}`
          }
          fix={{ href: "#proof", text: "See below" }}
        />
      </dl>
    </Card>
  );
}

const resultText = (r: VerificationRow) => (r.ok === 1 ? <span className={tone.ok}>whole</span> : r.ok === 0 ? <span className={tone.fail}>damaged</span> : <span className={tone.warn}>not checkable here</span>);

function drillDetail(d: Drill): string {
  if (d.status !== "success" || !d.detail) return d.error ?? "";
  const x = JSON.parse(d.detail) as { stage_s: number; apply_s: number; check_s: number; documents: number; document_files: number };
  return `back in ${d.seconds} s (staged ${x.stage_s} s, applied ${x.apply_s} s, checked ${x.check_s} s): ${x.documents} documents, ${x.document_files} files`;
}

function Proof({ inst }: { inst: Instance }) {
  const rows = verificationRows(inst.db);
  const listed = rows.filter((r) => r.kind !== "blob");
  const blobs = rows.filter((r) => r.kind === "blob");
  const badBlobs = blobs.filter((r) => r.ok === 0);
  const drills = recentDrills(inst.db, 10);
  const proof = proofSummary(inst);
  return (
    <Card className="space-y-4" id="proof" data-testid="proof">
      <div>
        <h2 className="font-semibold">Restore drills</h2>
        <p className="text-sm text-zinc-600 dark:text-zinc-400">
          The newest backup is restored into a scratch directory, opened, deep-checked and compared with what it says it holds; the live instance is not touched.{" "}
          {proof.drills_every_days ? `Runs every ${proof.drills_every_days} days.` : "Scheduled drills are off."}
        </p>
      </div>
      {drills.length > 0 ? (
        <ul className="divide-y divide-zinc-100 text-sm dark:divide-zinc-800" data-testid="drills">
          {drills.map((d) => (
            <li key={d.id} className="py-1.5">
              <span className={`mr-2 inline-block w-16 font-semibold uppercase ${d.status === "success" ? tone.ok : d.status === "failed" ? tone.fail : tone.warn}`}>{d.status === "success" ? "passed" : d.status}</span>
              <span className="tabular-nums">{formatDateTime(d.started_at)}</span>
              {d.archive && <span className="ml-2 font-mono text-xs">{d.archive}</span>}
              <span className="ml-2 text-zinc-600 dark:text-zinc-400">{drillDetail(d)}</span>
            </li>
          ))}
        </ul>
      ) : (
        <p className="text-sm">No drill has run yet.</p>
      )}
      <JobButton action={runDrillNow} label="Run restore drill" busyLabel="Restoring into a scratch directory…" />
      <div>
        <h2 className="font-semibold">Verification</h2>
        <p className="text-sm text-zinc-600 dark:text-zinc-400">
          Every stored backup{blobs.length ? " and every object in the bucket" : ""} is re-read a slice an hour, so each is checked at least once in {proof.verification.period_days} days
          {proof.verification.last_slice_at ? ` (last slice ${formatDateTime(proof.verification.last_slice_at)})` : ""}. The command line does it all at once: coffer verify --all.
        </p>
      </div>
      {listed.length > 0 && (
        <ul className="divide-y divide-zinc-100 text-sm dark:divide-zinc-800" data-testid="verifications">
          {listed.map((r) => (
            <li key={`${r.target}/${r.object}`} className="flex flex-wrap gap-x-3 py-1.5">
              <span className="font-mono text-xs">{r.target === "offsite" ? `offsite: ${r.object}` : r.object}</span>
              <span className="text-zinc-600 dark:text-zinc-400">{formatBytes(r.size)}</span>
              <span>
                {resultText(r)} · checked {formatDateTime(r.verified_at)}
              </span>
              {r.ok !== 1 && r.error && <span className="w-full text-xs text-red-700 dark:text-red-400">{r.error}</span>}
            </li>
          ))}
        </ul>
      )}
      {blobs.length > 0 && (
        <p className="text-sm" data-testid="verified-blobs">
          Document files in the bucket: {blobs.length} checked, {badBlobs.length ? <span className={tone.fail}>{badBlobs.length} damaged or missing</span> : "all whole"}.
          {badBlobs.slice(0, 5).map((b) => (
            <span key={b.object} className="block text-xs text-red-700 dark:text-red-400">
              {b.error}
            </span>
          ))}
        </p>
      )}
      {rows.length === 0 && <p className="text-sm">Nothing has been re-checked yet: the first slice runs within minutes of the first backup.</p>}
    </Card>
  );
}

export default async function HealthPage() {
  const { inst } = await pageAdmin();
  // Quick checks are cheap: always fresh. The deep check reads every file, so it runs weekly or on request.
  const quick = quickReport(inst);
  const deep = lastDoctorReport(inst, true);
  return (
    <>
      <PageTitle description="Checks of the database, settings, keys and every document file. The command line has the same checks: coffer doctor --deep.">Health</PageTitle>
      <div className="space-y-6">
        <Status reasons={healthReasons(inst, Date.now(), quick.findings)} />
        <Protection inst={inst} />
        <Proof inst={inst} />
        <Report title="Quick checks" report={quick} empty="" />
        <Report title="Deep check" report={deep} empty="Not run yet. It runs once a week, or now:" />
        <JobButton action={runDeepCheckNow} label="Run deep check" busyLabel="Reading every file…" />
      </div>
    </>
  );
}
