"use server";

import { z } from "zod";
import { revalidatePath } from "next/cache";
import { adminAction } from "@/app/_server/actions";
import { worst } from "@/lib/doctor";
import { runDeepCheck } from "@/lib/doctor/job";
import { audit } from "@/lib/audit/log";

export const runDeepCheckNow = adminAction(z.object({}), async (_v, ctx) => {
  const report = await runDeepCheck(ctx.inst);
  audit(ctx.inst.db, { id: ctx.user.id, name: ctx.user.username, ip: ctx.ip }, "doctor.deep", worst(report.findings));
  revalidatePath("/settings/health");
  return { ok: true, message: worst(report.findings) === "ok" ? "Deep check done: everything is in order." : "Deep check done: see the findings below." };
});
