import "server-only";
import { z } from "zod";
import { connectionSchema, toLocation } from "@/lib/backup/offsite/location";
import { readJson } from "./http";
import { restoreKeys } from "./restore";
import { AppError } from "@/lib/errors";
import { parsePointInTime } from "@/lib/continuous/pitr";

const wizardBody = z.object({
  connection: connectionSchema,
  snapshot: z.string().max(200).optional(),
  /** A second of the bucket's continuous copy instead of a snapshot (ISO 8601 with its zone). */
  at: z.string().max(64).optional(),
  identity: z.string().max(64 * 1024).optional(),
  passphrase: z.string().max(1024).optional(),
});

/** The wizard's JSON: a connection, and for a restore the snapshot or the time, and its key. */
export async function readWizardOffsite(req: Request) {
  const body = wizardBody.parse(await readJson(req, 128 * 1024));
  if (body.snapshot && body.at) throw new AppError(400, "SNAPSHOT_OR_TIME", "Choose a snapshot or a point in time to restore, not both.");
  return { loc: toLocation(body.connection), snapshot: body.snapshot ?? null, at: body.at ? parsePointInTime(body.at) : null, keys: restoreKeys(body) };
}
