"use server";

import { z } from "zod";
import { revalidatePath } from "next/cache";
import { adminAction } from "@/app/_server/actions";
import { currentSettings, updateBackupSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import { userActor, audit } from "@/lib/audit/log";
import type { OffsiteSettings } from "@/lib/settings/schema";
import { connectionFormSchema, describeLocation, locationFromSettings, offsiteSettingsFrom } from "@/lib/backup/offsite/location";

/** The form's offsite settings, the secret kept when the field is left empty (it is never sent back to the browser). */
function offsiteFromForm(v: z.infer<typeof connectionFormSchema>, ctx: { inst: { configKey: Buffer; paths: { settings: string } } }): OffsiteSettings {
  const current = currentSettings(ctx.inst.paths.settings).backup.offsite;
  return offsiteSettingsFrom(v, v.enabled, v.secret_access_key ? encryptSecret(ctx.inst.configKey, v.secret_access_key) : current.secret_access_key);
}

const NEED_SECRET = { error: "Check the highlighted fields.", fields: { secret_access_key: "Enter the secret access key." } };

/** Settings → Backup → Offsite → Save. */
export const saveOffsite = adminAction(connectionFormSchema, async (v, ctx) => {
  const offsite = offsiteFromForm(v, ctx);
  if (!offsite.secret_access_key) return NEED_SECRET;
  updateBackupSettings(ctx.inst.paths.settings, () => ({ offsite }));
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "settings.offsite", describeLocation({ bucket: offsite.bucket, prefix: offsite.prefix }), {
    enabled: offsite.enabled,
    endpoint: offsite.endpoint,
  });
  revalidatePath("/settings/backup", "layout");
  return { ok: true, message: offsite.enabled ? "Saved. Every backup now also goes to this bucket." : "Saved. Backups are not sent offsite (turn on “Send every backup offsite” to start)." };
});

/** Settings → Backup → Offsite → Test connection: the form as it is now, saved or not. */
export const testOffsiteConnection = adminAction(connectionFormSchema, async (v, ctx) => {
  const offsite = offsiteFromForm(v, ctx);
  if (!offsite.secret_access_key) return NEED_SECRET;
  const { testOffsite } = await import("@/lib/backup/offsite/checks"); // the AWS SDK, only when used
  const r = await testOffsite(ctx.inst, locationFromSettings(ctx.inst, offsite));
  return { ok: true, message: r.message };
});

/** Settings → Backup → Offsite → Adopt: this server takes over a repository another instance made. */
export const adoptOffsite = adminAction(z.object({}), async (_v, ctx) => {
  const { adoptRepository, closeRepository, configuredRepository } = await import("@/lib/backup/offsite/repository");
  const repo = configuredRepository(ctx.inst);
  try {
    await adoptRepository(repo, ctx.inst);
    audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "offsite.adopt", describeLocation(repo.loc));
  } finally {
    closeRepository(repo);
  }
  revalidatePath("/settings/backup", "layout");
  return { ok: true, message: "This instance now owns the repository. The next backup goes there." };
});
