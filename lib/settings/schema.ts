import { z } from "zod";
import { selectableScopeSchema } from "../backup/format/tables";

const GiB = 1024 * 1024 * 1024;

export const retentionSchema = z
  .object({
    mode: z.enum(["count", "days", "gfs"]).default("count"),
    count: z.number().int().min(1).max(10000).default(7),
    days: z.number().int().min(1).max(36500).default(30),
    gfs: z
      .object({
        latest: z.number().int().min(0).max(1000).default(10),
        hourly: z.number().int().min(0).max(1000).default(24),
        daily: z.number().int().min(0).max(1000).default(7),
        weekly: z.number().int().min(0).max(1000).default(4),
        monthly: z.number().int().min(0).max(1000).default(6),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

/** age1… in bech32 (the doctor checks the checksum too). */
export const AGE_RECIPIENT_RE = /^age1[02-9ac-hj-np-z]{58}$/;

export const encryptionSchema = z
  .object({
    mode: z.enum(["off", "recipients", "passphrase"]).default("off"),
    /** Public keys only (age1…): the identities that decrypt are never stored by Coffer. */
    recipients: z.array(z.string().regex(AGE_RECIPIENT_RE, "not an age recipient (age1…)")).max(20).default([]),
    // Stored as enc:v1:… (lib/settings/secrets.ts), passphrase mode only.
    passphrase: z.string().nullable().default(null),
  })
  .strict()
  .prefault({})
  .superRefine((e, ctx) => {
    if (e.mode === "recipients" && e.recipients.length === 0) ctx.addIssue({ code: "custom", path: ["recipients"], message: "recipients mode needs at least one age1… recipient" });
    if (e.mode === "passphrase" && !e.passphrase) ctx.addIssue({ code: "custom", path: ["passphrase"], message: "passphrase mode needs a passphrase" });
  });

/** An S3-compatible repository the job's backups also go to (docs/architecture.md#the-offsite-repository). */
export const offsiteSchema = z
  .object({
    enabled: z.boolean().default(false),
    endpoint: z.string().default(""),
    region: z.string().default("us-east-1"),
    bucket: z.string().default(""),
    prefix: z.string().default("coffer"),
    path_style: z.boolean().default(true),
    access_key_id: z.string().default(""),
    // Stored as enc:v1:… (lib/settings/secrets.ts); never in clear.
    secret_access_key: z.string().nullable().default(null),
    /** Checksums only where S3 requires them (several S3-compatible stores reject the SDK's default CRC32 uploads). */
    checksum_compat: z.boolean().default(true),
  })
  .strict()
  .prefault({})
  .superRefine((o, ctx) => {
    if (!o.enabled) return;
    if (!/^https?:\/\/[^\s/]+/i.test(o.endpoint)) ctx.addIssue({ code: "custom", path: ["endpoint"], message: "offsite needs an http:// or https:// endpoint" });
    if (!o.bucket) ctx.addIssue({ code: "custom", path: ["bucket"], message: "offsite needs a bucket" });
    if (!o.access_key_id || !o.secret_access_key) ctx.addIssue({ code: "custom", path: ["access_key_id"], message: "offsite needs an access key ID and secret" });
  });

export const backupJobSchema = z
  .object({
    enabled: z.boolean().default(false),
    directory: z.string().min(1).default("data/backups"),
    scope: selectableScopeSchema.default("full"),
    schedule: z.string().min(1).default("daily"),
    time_zone: z.string().min(1).default("UTC"),
    retention: retentionSchema,
    notify: z
      .object({
        // Stored as enc:v1:… (lib/settings/secrets.ts); never in clear.
        webhook_url: z.string().nullable().default(null),
      })
      .strict()
      .prefault({}),
    encryption: encryptionSchema,
    offsite: offsiteSchema,
    /**
     * Continuous protection (docs/architecture.md#continuous-protection): Litestream ships every database change to
     * <directory>/continuous/ and any second of the last window_days can be restored. Off in
     * files that do not say (instances from before it); setup turns it on with "Protect this instance".
     */
    continuous: z
      .object({
        enabled: z.boolean().default(false),
        window_days: z.number().int().min(1).max(90).default(7),
        /** Follow the offsite location when it is on: every change reaches the bucket within seconds (lib/continuous/offsite.ts). */
        offsite: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /** Proof that backups restore (docs/architecture.md#locks-and-jobs): rolling verification and restore drills. */
    proof: z
      .object({
        /** Every stored byte, local and offsite, is re-read at least once in this many days. */
        verify_period_days: z.number().int().min(1).max(365).default(30),
        /** A restore drill of the newest backup every this many days; 0 turns scheduled drills off. */
        drill_every_days: z.number().int().min(0).max(90).default(7),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export const settingsSchema = z
  .object({
    documents: z
      .object({
        max_upload_bytes: z
          .number()
          .int()
          .min(1)
          .default(2 * GiB),
      })
      .strict()
      .prefault({}),
    backup: backupJobSchema,
    trash: z
      .object({
        /** A deleted document stays in the trash this many days, then is purged; 0 deletes at once. */
        retention_days: z.number().int().min(0).max(3650).default(30),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Settings = z.infer<typeof settingsSchema>;
export type BackupJob = z.infer<typeof backupJobSchema>;
export type EncryptionSettings = z.infer<typeof encryptionSchema>;
export type OffsiteSettings = z.infer<typeof offsiteSchema>;
