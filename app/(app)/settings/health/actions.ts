"use server";

import { z } from "zod";
import { revalidatePath } from "next/cache";
import { adminAction } from "@/app/_server/actions";
import { worst } from "@/lib/doctor";
import { runDeepCheck } from "@/lib/doctor/job";
import { userActor, audit } from "@/lib/audit/log";
import { runDrill } from "@/lib/backup/proof/drill";
import { exclusively } from "@/lib/backup/proof/proof";

export const runDeepCheckNow = adminAction(z.object({}), async (_v, ctx) => {
  const report = await runDeepCheck(ctx.inst);
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "doctor.deep", worst(report.findings));
  revalidatePath("/settings/health");
  return { ok: true, message: worst(report.findings) === "ok" ? "Deep check done: everything is in order." : "Deep check done: see the findings below." };
});

/** Settings → Health → Run restore drill: the newest backup restored into a scratch directory and checked (the live instance untouched). */
export const runDrillNow = adminAction(z.object({}), async (_v, ctx) => {
  const drill = await exclusively(() => runDrill(ctx.inst, { trigger: "manual" }));
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "backup.drill", drill.archive ?? "", { status: drill.status, seconds: drill.seconds });
  revalidatePath("/settings/health");
  if (drill.status === "success") return { ok: true, message: `Restore proven: ${drill.archive} came back in ${drill.seconds} s and passed the deep check.` };
  return { error: drill.status === "skipped" ? `No drill ran: ${drill.error}` : `The drill failed: ${drill.error}` };
});
