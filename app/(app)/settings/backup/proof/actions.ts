"use server";

import { z } from "zod";
import { revalidatePath } from "next/cache";
import { adminAction } from "@/app/_server/actions";
import { updateBackupSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import { alert } from "@/lib/backup/alerts";
import { lastSuccess } from "@/lib/backup/runs";
import { userActor, audit } from "@/lib/audit/log";
import { countField } from "../form-fields";

const proofForm = z.object({
  verify_period_days: countField(365).min(1, "Re-check at least every 1 day."),
  drill_every_days: countField(90),
});

/** Settings → Backup → Proof: how often stored bytes are re-read and the newest backup is restored for real. */
export const saveProof = adminAction(proofForm, async (v, ctx) => {
  updateBackupSettings(ctx.inst.paths.settings, () => ({ proof: { verify_period_days: v.verify_period_days, drill_every_days: v.drill_every_days } }));
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "settings.proof", `verify ${v.verify_period_days} d, drill ${v.drill_every_days} d`);
  revalidatePath("/settings/backup", "layout");
  revalidatePath("/settings/health");
  return { ok: true, message: v.drill_every_days ? "Saved." : "Saved. Restore drills are off: nothing proves a backup restores until you turn them on." };
});

const alertsForm = z
  .object({
    webhook_url: z.string().trim().max(2000).optional().default(""),
    clear_webhook: z.literal("on").optional(),
  })
  .superRefine((v, ctx) => {
    if (v.webhook_url && !/^https?:\/\/\S+$/i.test(v.webhook_url)) ctx.addIssue({ code: "custom", path: ["webhook_url"], message: "Use an http:// or https:// address." });
  });

/** Settings → Backup → Proof → Alerts: the webhook, stored encrypted; an empty field keeps the saved one. */
export const saveAlerts = adminAction(alertsForm, async (v, ctx) => {
  const backup = updateBackupSettings(ctx.inst.paths.settings, (b) => ({
    notify: { webhook_url: v.clear_webhook ? null : v.webhook_url ? encryptSecret(ctx.inst.configKey, v.webhook_url) : b.notify.webhook_url },
  }));
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "settings.alerts", backup.notify.webhook_url ? "webhook set" : "no webhook");
  revalidatePath("/settings/backup", "layout");
  return { ok: true, message: backup.notify.webhook_url ? "Saved. Failed and stale backups are reported to the webhook." : "Saved. No webhook: failures show only here and in Health." };
});

export const sendTestAlert = adminAction(z.object({}), async (_v, ctx) => {
  const r = await alert(ctx.inst, "test", null, lastSuccess(ctx.inst.db)?.finished_at ?? null, { backoffMs: [], timeoutMs: 8000 });
  return r.ok ? { ok: true, message: "Test alert delivered." } : { error: `The test alert was not delivered: ${r.error}.` };
});
