import { getInstance } from "@/lib/runtime";
import { completeNewSetup, newSetupSchema, requireSetupPending } from "@/lib/auth/setup";
import { route, readJson, clientIp } from "@/app/_server/http";

/** Unattended New setup: the setup code authorizes it (checked in completeNewSetup). */
export const POST = route(async (req) => {
  requireSetupPending(getInstance());
  const input = newSetupSchema.parse(await readJson(req));
  const user = await completeNewSetup(getInstance(), input, clientIp(req.headers));
  return Response.json({ user: { id: user.id, username: user.username, role: user.role } }, { status: 201 });
});
