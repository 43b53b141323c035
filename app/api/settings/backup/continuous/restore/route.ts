import { z } from "zod";
import { requireAdmin } from "@/app/_server/auth";
import { readJson, requestSignal, route } from "@/app/_server/http";
import { parsePointInTime, stagePointInTime } from "@/lib/continuous/pitr";

const body = z.object({ at: z.string({ error: "Give the time to restore to as \"at\", such as 2026-12-06T10:41:00Z." }).max(64) });

/** Stage the instance as it was at `at` from the continuous replica: answers a preview like every other restore, applied with the same confirmation. */
export const POST = route(async (req) => {
  const { inst, user } = await requireAdmin();
  const { at } = body.parse(await readJson(req, 4 * 1024));
  return Response.json(await stagePointInTime(inst, parsePointInTime(at), { owner: `user:${user.id}`, signal: requestSignal(req) }), { status: 201 });
});
