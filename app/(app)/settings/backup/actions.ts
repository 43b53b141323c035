"use server";

import { z } from "zod";
import { revalidatePath } from "next/cache";
import { adminAction } from "@/app/_server/actions";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";
import { backupDirSetting, resolveBackupDir } from "@/lib/backup/local/directory";
import { parseSchedule } from "@/lib/backup/jobs/schedule";
import { alert } from "@/lib/backup/alerts";
import { lastSuccess } from "@/lib/backup/runs";
import { userActor, audit } from "@/lib/audit/log";
import { AppError } from "@/lib/errors";
import { selectableScopeSchema } from "@/lib/backup/format/tables";
import { parseRecipient } from "@/lib/crypto/age";
import type { OffsiteSettings } from "@/lib/settings/schema";
import { describeLocation, locationFromSettings, offsiteSettingsFrom } from "@/lib/backup/offsite/location";
import { endpointProblem } from "@/lib/http/endpoint-guard";

const count = (max: number) => z.coerce.number({ error: "Enter a number." }).int("Use a whole number.").min(0, "Use 0 or more.").max(max, `Use at most ${max}.`);

const jobForm = z
  .object({
    enabled: z.literal("on").optional(),
    directory: z.string().min(1, "Choose a directory."),
    scope: selectableScopeSchema,
    schedule_kind: z.enum(["hourly", "daily", "weekly", "cron"]),
    cron: z.string().trim().max(100).optional().default(""),
    time_zone: z.string().trim().min(1, "Enter a time zone, e.g. UTC or Europe/Berlin."),
    retention_mode: z.enum(["count", "days", "gfs"]),
    count: count(10000).min(1, "Keep at least 1."),
    days: count(36500).min(1, "Keep at least 1 day."),
    gfs_latest: count(1000),
    gfs_hourly: count(1000),
    gfs_daily: count(1000),
    gfs_weekly: count(1000),
    gfs_monthly: count(1000),
    webhook_url: z.string().trim().max(2000).optional().default(""),
    clear_webhook: z.literal("on").optional(),
    verify_period_days: count(365).min(1, "Re-check at least every 1 day."),
    drill_every_days: count(90),
  })
  .superRefine((v, ctx) => {
    if (v.schedule_kind === "cron" && !v.cron) ctx.addIssue({ code: "custom", path: ["cron"], message: "Enter a cron expression, e.g. 30 2 * * *." });
    if (v.webhook_url && !/^https?:\/\/\S+$/i.test(v.webhook_url)) ctx.addIssue({ code: "custom", path: ["webhook_url"], message: "Use an http:// or https:// address." });
  });

/** Settings → Backup → Scheduled backups. Validated as a whole; nothing changes unless all of it is valid. */
export const saveBackupJob = adminAction(jobForm, async (v, ctx) => {
  const schedule = v.schedule_kind === "cron" ? v.cron : v.schedule_kind;
  try {
    parseSchedule(schedule, v.time_zone);
  } catch (err) {
    const e = err as AppError;
    return { error: "Check the highlighted fields.", fields: { [e.code === "TIME_ZONE_INVALID" ? "time_zone" : "cron"]: e.message } };
  }
  let directory: string;
  try {
    directory = backupDirSetting(ctx.inst, resolveBackupDir(ctx.inst, v.directory));
  } catch (err) {
    return { error: "Check the highlighted fields.", fields: { directory: (err as Error).message } };
  }
  const settings = currentSettings(ctx.inst.paths.settings);
  const webhook = v.clear_webhook ? null : v.webhook_url ? encryptSecret(ctx.inst.configKey, v.webhook_url) : settings.backup.notify.webhook_url;
  saveSettings(ctx.inst.paths.settings, {
    ...settings,
    backup: {
      enabled: v.enabled === "on",
      directory,
      scope: v.scope,
      schedule,
      time_zone: v.time_zone,
      retention: {
        mode: v.retention_mode,
        count: v.count,
        days: v.days,
        gfs: { latest: v.gfs_latest, hourly: v.gfs_hourly, daily: v.gfs_daily, weekly: v.gfs_weekly, monthly: v.gfs_monthly },
      },
      notify: { webhook_url: webhook },
      encryption: settings.backup.encryption,
      offsite: settings.backup.offsite,
      continuous: settings.backup.continuous,
      proof: { verify_period_days: v.verify_period_days, drill_every_days: v.drill_every_days },
    },
  });
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "settings.backup", schedule, { enabled: v.enabled === "on", scope: v.scope, retention: v.retention_mode });
  revalidatePath("/settings/backup");
  return { ok: true, message: v.enabled === "on" ? "Saved. The schedule is in effect now." : "Saved. Scheduled backups are off." };
});

export const sendTestAlert = adminAction(z.object({}), async (_v, ctx) => {
  const r = await alert(ctx.inst, "test", null, lastSuccess(ctx.inst.db)?.finished_at ?? null, { backoffMs: [], timeoutMs: 8000 });
  return r.ok ? { ok: true, message: "Test alert delivered." } : { error: `The test alert was not delivered: ${r.error}.` };
});

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
  const settings = currentSettings(ctx.inst.paths.settings);
  const recipients = v.mode === "recipients" ? [...new Set(v.recipients.split(/[\s,]+/).filter(Boolean))] : [];
  const passphrase = v.mode === "passphrase" ? encryptSecret(ctx.inst.configKey, v.passphrase) : null;
  saveSettings(ctx.inst.paths.settings, { ...settings, backup: { ...settings.backup, encryption: { mode: v.mode, recipients, passphrase } } });
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "settings.encryption", v.mode, v.mode === "recipients" ? { recipients } : undefined);
  revalidatePath("/settings/backup");
  revalidatePath("/settings/health");
  const message =
    v.mode === "off"
      ? "Encryption is off: new backups are readable by anyone who has a copy."
      : v.mode === "recipients"
        ? `New backups are encrypted for ${recipients.length === 1 ? "this key" : `these ${recipients.length} keys`}.`
        : "New backups are encrypted with the passphrase.";
  return { ok: true, message };
});

const offsiteForm = z
  .object({
    enabled: z.literal("on").optional(),
    endpoint: z.string().trim().max(500),
    region: z.string().trim().max(64).optional().default(""),
    bucket: z.string().trim().max(63),
    prefix: z.string().trim().max(512).optional().default(""),
    path_style: z.literal("on").optional(),
    access_key_id: z.string().trim().max(256),
    secret_access_key: z.string().max(1024).optional().default(""),
    checksum_compat: z.literal("on").optional(),
  })
  .superRefine((v, ctx) => {
    if (!/^https?:\/\/[^\s/]+/i.test(v.endpoint)) ctx.addIssue({ code: "custom", path: ["endpoint"], message: "Use an http:// or https:// address, e.g. https://s3.eu-central-1.amazonaws.com." });
    else if (endpointProblem(v.endpoint)) ctx.addIssue({ code: "custom", path: ["endpoint"], message: endpointProblem(v.endpoint)!.message });
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(v.bucket)) ctx.addIssue({ code: "custom", path: ["bucket"], message: "Bucket names are 3-63 lowercase letters, digits, dots and hyphens." });
    if (!v.access_key_id) ctx.addIssue({ code: "custom", path: ["access_key_id"], message: "Enter the access key ID." });
    if (/[^A-Za-z0-9._/-]/.test(v.prefix)) ctx.addIssue({ code: "custom", path: ["prefix"], message: "Use letters, digits, . _ - and / only." });
  });

/** The form's offsite settings, the secret kept when the field is left empty (it is never sent back to the browser). */
function offsiteFromForm(v: z.infer<typeof offsiteForm>, ctx: { inst: { configKey: Buffer; paths: { settings: string } } }): OffsiteSettings {
  const current = currentSettings(ctx.inst.paths.settings).backup.offsite;
  const address = { ...v, path_style: v.path_style === "on", checksum_compat: v.checksum_compat === "on" };
  return offsiteSettingsFrom(address, v.enabled === "on", v.secret_access_key ? encryptSecret(ctx.inst.configKey, v.secret_access_key) : current.secret_access_key);
}

const NEED_SECRET = { error: "Check the highlighted fields.", fields: { secret_access_key: "Enter the secret access key." } };

/** Settings → Backup → Offsite → Save. */
export const saveOffsite = adminAction(offsiteForm, async (v, ctx) => {
  const offsite = offsiteFromForm(v, ctx);
  if (!offsite.secret_access_key) return NEED_SECRET;
  const settings = currentSettings(ctx.inst.paths.settings);
  saveSettings(ctx.inst.paths.settings, { ...settings, backup: { ...settings.backup, offsite } });
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "settings.offsite", describeLocation({ bucket: offsite.bucket, prefix: offsite.prefix }), {
    enabled: offsite.enabled,
    endpoint: offsite.endpoint,
  });
  revalidatePath("/settings/backup");
  return { ok: true, message: offsite.enabled ? "Saved. Every backup now also goes to this bucket." : "Saved. Backups are not sent offsite (turn on “Send every backup offsite” to start)." };
});

/** Settings → Backup → Offsite → Test connection: the form as it is now, saved or not. */
export const testOffsiteConnection = adminAction(offsiteForm, async (v, ctx) => {
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
  revalidatePath("/settings/backup");
  return { ok: true, message: "This instance now owns the repository. The next backup goes there." };
});
