import { AppError } from "@/lib/errors";
import { documentsListRoute } from "@/app/_server/backup-documents";

/** The documents the instance held at ?at=<ISO time> (a second of the continuous window), with their state against now. */
export const GET = documentsListRoute((url) => {
  const at = url.searchParams.get("at");
  if (!at) throw new AppError(400, "BAD_TIME", "Say which time to look at: ?at=2026-12-06T10:41:00Z.");
  return { kind: "point_in_time", at };
});
