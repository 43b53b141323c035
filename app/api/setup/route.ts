import { getInstance } from "@/lib/runtime";
import { completeNewSetup, newSetupSchema, requireSetupCode, requireSetupPending } from "@/lib/auth/setup";
import { toLocation } from "@/lib/backup/offsite/location";
import { route, readJson, clientIp } from "@/app/_server/http";

/**
 * New setup (the wizard, or an unattended install): the setup code
 * authorizes it (checked in completeNewSetup). A bucket to send backups to
 * is tested first (write, read back, delete a probe; not another
 * instance's repository), after the setup code, so nothing is set up
 * with an offsite target that does not work.
 */
export const POST = route(async (req) => {
  const inst = getInstance();
  requireSetupPending(inst);
  const input = newSetupSchema.parse(await readJson(req));
  const offsite = input.backup?.offsite;
  if (offsite) {
    requireSetupCode(inst, input.token, clientIp(req.headers));
    const { testOffsite } = await import("@/lib/backup/offsite/checks");
    await testOffsite(inst, toLocation(offsite));
  }
  const user = await completeNewSetup(inst, input, clientIp(req.headers));
  return Response.json({ user: { id: user.id, username: user.username, role: user.role } }, { status: 201 });
});
