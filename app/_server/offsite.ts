import "server-only";
import { z } from "zod";
import { connectionSchema, toLocation } from "@/lib/backup/offsite/location";
import { readJson } from "./http";
import { restoreKeys } from "./restore";

const wizardBody = z.object({
  connection: connectionSchema,
  snapshot: z.string().max(200).optional(),
  identity: z.string().max(64 * 1024).optional(),
  passphrase: z.string().max(1024).optional(),
});

/** The wizard's JSON: a connection, and for a restore the snapshot and its key. */
export async function readWizardOffsite(req: Request) {
  const body = wizardBody.parse(await readJson(req, 128 * 1024));
  return { loc: toLocation(body.connection), snapshot: body.snapshot ?? null, keys: restoreKeys(body) };
}
