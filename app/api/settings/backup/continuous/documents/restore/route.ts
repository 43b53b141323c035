import { AppError } from "@/lib/errors";
import { documentsRestoreRoute } from "@/app/_server/backup-documents";

/** Restore chosen documents as they were at {at} (ISO time in the continuous window): {at, ids} or {at, deleted_since: true}. */
export const POST = documentsRestoreRoute((body) => {
  if (typeof body.at !== "string") throw new AppError(400, "BAD_TIME", 'Say which time to restore from: {"at": "2026-12-06T10:41:00Z", "ids": [...]}.');
  return { kind: "point_in_time", at: body.at };
}, ["at"]);
