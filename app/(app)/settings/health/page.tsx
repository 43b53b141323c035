import type { Metadata } from "next";
import Link from "next/link";
import { pageAdmin } from "@/app/_server/auth";
import { lastDoctorReport, quickReport, type DoctorReport } from "@/lib/doctor";
import { PageTitle, Card } from "@/components/ui";
import { DeepCheckButton } from "@/components/settings/DeepCheckButton";
import { formatDateTime } from "@/lib/format";
import { healthReasons, healthStatus, type HealthReason, type HealthStatus } from "@/lib/health";

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
                <Link href={r.fix} className="ml-2 font-medium text-emerald-800 underline dark:text-emerald-400">
                  Fix in Settings → {r.fix === "/settings/backup" ? "Backup" : r.fix}
                </Link>
              )}
            </li>
          ))}
        </ul>
      )}
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
        <Report title="Quick checks" report={quick} empty="" />
        <Report title="Deep check" report={deep} empty="Not run yet. It runs once a week, or now:" />
        <DeepCheckButton />
      </div>
    </>
  );
}
