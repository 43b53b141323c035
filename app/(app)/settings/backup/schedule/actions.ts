"use server";

import { z } from "zod";
import { revalidatePath } from "next/cache";
import { adminAction } from "@/app/_server/actions";
import { updateBackupSettings } from "@/lib/settings/store";
import { backupDirSetting, resolveBackupDir } from "@/lib/backup/local/directory";
import { parseSchedule } from "@/lib/backup/jobs/schedule";
import { userActor, audit } from "@/lib/audit/log";
import { AppError } from "@/lib/errors";
import { selectableScopeSchema } from "@/lib/backup/format/tables";
import { countField } from "../form-fields";

const scheduleForm = z
  .object({
    enabled: z.literal("on").optional(),
    directory: z.string().min(1, "Choose a directory."),
    scope: selectableScopeSchema,
    schedule_kind: z.enum(["hourly", "daily", "weekly", "cron"]),
    cron: z.string().trim().max(100).optional().default(""),
    time_zone: z.string().trim().min(1, "Enter a time zone, e.g. UTC or Europe/Berlin."),
  })
  .superRefine((v, ctx) => {
    if (v.schedule_kind === "cron" && !v.cron) ctx.addIssue({ code: "custom", path: ["cron"], message: "Enter a cron expression, e.g. 30 2 * * *." });
  });

/** Settings → Backup → Schedule: when, what and where. Nothing changes unless all of it is valid. */
export const saveSchedule = adminAction(scheduleForm, async (v, ctx) => {
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
  const enabled = v.enabled === "on";
  updateBackupSettings(ctx.inst.paths.settings, () => ({ enabled, directory, scope: v.scope, schedule, time_zone: v.time_zone }));
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "settings.backup", schedule, { enabled, scope: v.scope });
  revalidatePath("/settings/backup", "layout");
  return { ok: true, message: enabled ? "Saved. The schedule is in effect now." : "Saved. Scheduled backups are off." };
});

const retentionForm = z.object({
  retention_mode: z.enum(["count", "days", "gfs"]),
  count: countField(10000).min(1, "Keep at least 1."),
  days: countField(36500).min(1, "Keep at least 1 day."),
  gfs_latest: countField(1000),
  gfs_hourly: countField(1000),
  gfs_daily: countField(1000),
  gfs_weekly: countField(1000),
  gfs_monthly: countField(1000),
});

/** Settings → Backup → Schedule → Keep: which stored backups retention keeps (it runs after each verified backup). */
export const saveRetention = adminAction(retentionForm, async (v, ctx) => {
  updateBackupSettings(ctx.inst.paths.settings, () => ({
    retention: {
      mode: v.retention_mode,
      count: v.count,
      days: v.days,
      gfs: { latest: v.gfs_latest, hourly: v.gfs_hourly, daily: v.gfs_daily, weekly: v.gfs_weekly, monthly: v.gfs_monthly },
    },
  }));
  audit(ctx.inst.db, userActor(ctx.user, ctx.ip), "settings.retention", v.retention_mode);
  revalidatePath("/settings/backup", "layout");
  return { ok: true, message: "Saved. Retention applies after the next verified backup." };
});
