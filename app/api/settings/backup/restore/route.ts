import { requireAdmin } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { stageRequestBody } from "@/app/_server/restore";

export const POST = route(async (req) => {
  const { inst, user } = await requireAdmin();
  return Response.json(await stageRequestBody(inst, req, `user:${user.id}`), { status: 201 });
});
