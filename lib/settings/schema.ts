import { z } from "zod";
import { selectableScopeSchema } from "../backup/format";

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
  })
  .strict();

export type Settings = z.infer<typeof settingsSchema>;
export type BackupJob = z.infer<typeof backupJobSchema>;
