import { getInstance } from "@/lib/runtime";
import { requireSetupCode } from "@/lib/auth/setup";
import { route, clientIp } from "@/app/_server/http";
import { stageRequestBody } from "@/app/_server/restore";

/** Wizard: the setup code (x-setup-token) first, then the raw archive body is staged and previewed. */
export const POST = route(async (req) => {
  const inst = getInstance();
  const ip = clientIp(req.headers);
  requireSetupCode(inst, req.headers.get("x-setup-token"), ip);
  return Response.json(await stageRequestBody(inst, req, `setup:${ip ?? "?"}`), { status: 201 });
});
