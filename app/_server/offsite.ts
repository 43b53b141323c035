import "server-only";
import { z } from "zod";
import type { S3Location } from "@/lib/backup/s3";
import { normalizePrefix } from "@/lib/backup/offsite-settings";
import { readJson } from "./http";
import { restoreKeys } from "./restore";

/** A repository's address and keys as the wizard sends them (used for this request only, never stored). */
export const connectionSchema = z.object({
  endpoint: z
    .string()
    .trim()
    .regex(/^https?:\/\/[^\s/]+/i, "Use an http:// or https:// address, e.g. https://s3.example.com."),
  region: z.string().trim().max(64).default("us-east-1"),
  bucket: z.string().trim().min(3, "Enter the bucket name.").max(63),
  prefix: z.string().trim().max(512).default(""),
  path_style: z.boolean().default(true),
  access_key_id: z.string().trim().min(1, "Enter the access key ID.").max(256),
  secret_access_key: z.string().min(1, "Enter the secret access key.").max(1024),
  checksum_compat: z.boolean().default(true),
});

export function toLocation(c: z.infer<typeof connectionSchema>): S3Location {
  return {
    endpoint: c.endpoint,
    region: c.region || "us-east-1",
    bucket: c.bucket,
    prefix: normalizePrefix(c.prefix),
    pathStyle: c.path_style,
    accessKeyId: c.access_key_id,
    secretAccessKey: c.secret_access_key,
    checksumCompat: c.checksum_compat,
  };
}

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
