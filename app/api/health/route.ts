import { getInstance } from "@/lib/runtime";
import { healthReport } from "@/lib/health";
import { route } from "@/app/_server/http";

/** For monitors (Uptime Kuma, a container HEALTHCHECK): 200 when ok or degraded, 503 when failing. */
export const GET = route(async () => {
  const report = healthReport(getInstance());
  return Response.json(report, { status: report.status === "failing" ? 503 : 200, headers: { "Cache-Control": "no-store" } });
});
