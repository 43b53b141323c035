import { requireAdmin } from "@/app/_server/auth";
import { route } from "@/app/_server/http";
import { stageRequestBody } from "@/app/_server/restore";

export const POST = route(async (req) => {
  const { inst } = await requireAdmin();
  return Response.json(await stageRequestBody(inst, req), { status: 201 });
});
