import { requireAdminOrToken } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { renderMetrics } from "@/lib/metrics";

/** Prometheus metrics: an API token with metrics:read (or an admin's session). */
export const GET = route(async (req) => {
  const { inst } = await requireAdminOrToken(req, "metrics:read", "metrics");
  return new Response(renderMetrics(inst), { headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": "no-store" } });
});
