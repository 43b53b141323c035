import { z } from "zod";
import { getInstance } from "@/lib/runtime";
import { requireSetupCode, requireSetupPending } from "@/lib/auth/setup";
import { route, readJson, clientIp } from "@/app/_server/http";

/** Wizard step 1: is this the setup code? Rate-limited like every other use of it. */
export const POST = route(async (req) => {
  requireSetupPending(getInstance());
  const { token } = z.object({ token: z.string().max(200) }).parse(await readJson(req));
  requireSetupCode(getInstance(), token, clientIp(req.headers));
  return Response.json({ ok: true });
});
