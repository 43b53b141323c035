"use server";

import { z } from "zod";
import { revalidatePath } from "next/cache";
import { adminAction } from "@/app/_server/actions";
import { updateBackupSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import { userActor, audit } from "@/lib/audit/log";
import { parseRecipient } from "@/lib/crypto/age";

const encryptionForm = z
  .object({
    mode: z.enum(["off", "recipients", "passphrase"]),
    recipients: z.string().max(20 * 80).optional().default(""),
    passphrase: z.string().max(1024).optional().default(""),
    passphrase_confirm: z.string().max(1024).optional().default(""),
  })
  .superRefine((v, ctx) => {
    if (v.mode === "recipients") {
      const list = v.recipients.split(/[\s,]+/).filter(Boolean);
      if (list.length === 0) ctx.addIssue({ code: "custom", path: ["recipients"], message: "Give at least one public key (age1…), or generate one." });
      const bad = list.find((r) => !parseRecipient(r));
      if (bad) ctx.addIssue({ code: "custom", path: ["recipients"], message: `${bad.slice(0, 20)}… is not an age public key (age1…, 62 characters).` });
    }
    if (v.mode === "passphrase") {
      if (v.passphrase.length < 12) ctx.addIssue({ code: "custom", path: ["passphrase"], message: "Use at least 12 characters (a few words are easiest)." });
      else if (v.passphrase !== v.passphrase_confirm) ctx.addIssue({ code: "custom", path: ["passphrase_confirm"], message: "The two passphrases differ." });
    }
  });

/** Settings → Backup → Encryption. Only public keys, or the passphrase encrypted with keys/config.key, are stored. */
export const saveEncryption = adminAction(encryptionForm, async (v, ctx) => {
  const recipients = v.mode === "recipients" ? [...new Set(v.recipients.split(/[\s,]+/).filter(Boolean))] : [];
  const passphrase = v.mode === "passphrase" ? encryptSecret(ctx.inst.configKey, v.passphrase) : null;
  updateBackupSettings(ctx.inst.paths.settings, () => ({ encryption: { mode: v.mode, recipients, passphrase } }));
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "settings.encryption", v.mode, v.mode === "recipients" ? { recipients } : undefined);
  revalidatePath("/settings/backup", "layout");
  revalidatePath("/settings/health");
  const message =
    v.mode === "off"
      ? "Encryption is off: new backups are readable by anyone who has a copy."
      : v.mode === "recipients"
        ? `New backups are encrypted for ${recipients.length === 1 ? "this key" : `these ${recipients.length} keys`}.`
        : "New backups are encrypted with the passphrase.";
  return { ok: true, message };
});
