import { getInstance } from "@/lib/runtime";
import { healthReport, publicHealth } from "@/lib/health";
import { route, clientIp } from "@/app/_server/http";
import { sessionUser } from "@/app/_server/auth";
import { authenticateToken, bearerOf } from "@/lib/auth/tokens";

/**
 * For monitors (Uptime Kuma, a container HEALTHCHECK): 200 when ok or
 * degraded, 503 when failing. Anyone gets the status; the reasons and the
 * backup, offsite and proof details only a signed-in admin or a
 * metrics:read token (they tell an outsider what is unprotected).
 */
export const GET = route(async (req) => {
  const inst = getInstance();
  const bearer = bearerOf(req.headers.get("authorization"));
  let detailed: boolean;
  if (bearer) {
    authenticateToken(inst, bearer, "metrics:read", clientIp(req.headers), "health"); // a wrong token is told so (401), not served the short answer
    detailed = true;
  } else detailed = (await sessionUser(inst))?.role === "admin";
  const report = healthReport(inst);
  return Response.json(detailed ? report : publicHealth(report), { status: report.status === "failing" ? 503 : 200, headers: { "Cache-Control": "no-store" } });
});
