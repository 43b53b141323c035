import type { Metadata } from "next";
import Link from "next/link";
import { pageAdmin } from "@/app/_server/auth";
import { listAudit } from "@/lib/audit/log";
import { PageTitle, Table } from "@/components/ui";

export const metadata: Metadata = { title: "Audit log" };

const PAGE = 100;

export default async function AuditPage({ searchParams }: { searchParams: Promise<Record<string, string | undefined>> }) {
  const { inst } = await pageAdmin();
  const sp = await searchParams;
  const before = Number(sp.before) > 0 ? Number(sp.before) : undefined;
  const action = sp.action && /^[a-z._]{1,40}$/.test(sp.action) ? sp.action : undefined;
  const rows = listAudit(inst.db, { limit: PAGE, before, action });
  const filters = ["", "auth.", "setup.", "user.", "document.", "backup.", "restore."];
  return (
    <>
      <PageTitle description="Who did what, newest first. Failed sign-ins are recorded with the address they came from.">
        Audit log
      </PageTitle>
      <div className="mb-4 flex flex-wrap gap-2 text-sm">
        {filters.map((f) => (
          <Link
            key={f}
            href={f ? `/settings/audit?action=${f}` : "/settings/audit"}
            className={`rounded-full border px-3 py-1 ${
              (action ?? "") === f ? "border-emerald-600 bg-emerald-50 dark:bg-emerald-950" : "border-zinc-300 dark:border-zinc-700"
            }`}
          >
            {f ? f.replace(".", "") : "all"}
          </Link>
        ))}
      </div>
      <Table
        head={
          <>
            <th className="px-4 py-2 font-medium">Time (UTC)</th>
            <th className="px-4 py-2 font-medium">Actor</th>
            <th className="px-4 py-2 font-medium">Action</th>
            <th className="px-4 py-2 font-medium">Target</th>
            <th className="hidden px-4 py-2 font-medium sm:table-cell">Address</th>
          </>
        }
      >
        {rows.map((r) => (
          <tr key={r.id}>
            <td className="whitespace-nowrap px-4 py-2 tabular-nums">{r.at.replace("T", " ").slice(0, 19)}</td>
            <td className="px-4 py-2">{r.actor ?? "—"}</td>
            <td className="px-4 py-2 font-mono text-xs">{r.action}</td>
            <td className="max-w-[14rem] truncate px-4 py-2" title={r.target ?? ""}>
              {r.target ?? "—"}
            </td>
            <td className="hidden px-4 py-2 font-mono text-xs sm:table-cell">{r.ip ?? "—"}</td>
          </tr>
        ))}
        {rows.length === 0 && (
          <tr>
            <td colSpan={5} className="px-4 py-8 text-center text-zinc-600 dark:text-zinc-400">
              Nothing recorded yet.
            </td>
          </tr>
        )}
      </Table>
      {rows.length === PAGE && (
        <Link
          href={`/settings/audit?before=${rows[rows.length - 1].id}${action ? `&action=${action}` : ""}`}
          className="mt-4 inline-block text-sm font-medium text-emerald-700 underline dark:text-emerald-400"
        >
          Older entries
        </Link>
      )}
    </>
  );
}
