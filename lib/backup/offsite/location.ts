import { z } from "zod";
import { endpointProblem } from "../../http/endpoint-guard";
import type { Instance } from "../../instance";
import { AppError } from "../../errors";
import { currentSettings } from "../../settings/store";
import { decryptSecret, isEncryptedSecret } from "../../settings/secrets";
import type { OffsiteSettings } from "../../settings/schema";

/**
 * Where the offsite repository is, from settings.yaml: no AWS SDK here, so
 * the scheduler, the CLI and pages that only need to know (and name) the
 * repository do not load it. The other modules here talk to the store.
 */

/** Where an S3-compatible repository is and how to reach it (secret already decrypted). */
export interface S3Location {
  endpoint: string;
  region: string;
  bucket: string;
  /** Key prefix without leading or trailing slash; "" for the bucket's root. */
  prefix: string;
  pathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * Send checksums only where S3 requires them. Several S3-compatible stores
   * do not understand the SDK's default aws-chunked CRC32 uploads: one here
   * (s3rver) stored the chunk framing as part of the object.
   */
  checksumCompat: boolean;
}

export const joinKey = (...parts: string[]) => parts.filter(Boolean).join("/");

/** A key prefix without leading or trailing slashes. */
export const normalizePrefix = (prefix: string) => prefix.replace(/^\/+|\/+$/g, "");

/** s3://bucket/prefix for people and logs (never the credentials). */
export const describeLocation = (loc: Pick<S3Location, "bucket" | "prefix">) => `s3://${joinKey(loc.bucket, normalizePrefix(loc.prefix))}`;

/** The repository settings.yaml names, with the secret decrypted; null when offsite is off. */
export function offsiteLocation(inst: Instance): S3Location | null {
  const o = currentSettings(inst.paths.settings).backup.offsite;
  return o.enabled ? locationFromSettings(inst, o) : null;
}

/** The repository settings.yaml names, even while sending is off (to list and restore its snapshots). */
export function configuredLocation(inst: Instance): S3Location {
  const o = currentSettings(inst.paths.settings).backup.offsite;
  if (!o.bucket || !o.endpoint) throw new AppError(404, "OFFSITE_NOT_CONFIGURED", "No offsite storage is configured. Set it up in Settings → Backup → Offsite.");
  return locationFromSettings(inst, o);
}

export function locationFromSettings(inst: Instance, o: OffsiteSettings): S3Location {
  let secret = o.secret_access_key ?? "";
  if (isEncryptedSecret(secret)) {
    try {
      secret = decryptSecret(inst.configKey, secret);
    } catch {
      throw new AppError(422, "OFFSITE_SECRET", "The offsite secret access key in settings.yaml cannot be decrypted with this instance's key. Enter it again in Settings → Backup → Offsite.");
    }
  }
  return {
    endpoint: o.endpoint,
    region: o.region,
    bucket: o.bucket,
    prefix: normalizePrefix(o.prefix),
    pathStyle: o.path_style,
    accessKeyId: o.access_key_id,
    secretAccessKey: secret,
    checksumCompat: o.checksum_compat,
  };
}

/** A repository's address as a form gives it (the wizard's connection, Settings → Backup → Offsite). */
export interface RepositoryAddress {
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  path_style: boolean;
  access_key_id: string;
  checksum_compat: boolean;
}

/** What settings.yaml keeps for a repository: `storedSecret` is already enc:v1: (never the secret in clear). */
export function offsiteSettingsFrom(a: RepositoryAddress, enabled: boolean, storedSecret: string | null): OffsiteSettings {
  return {
    enabled,
    endpoint: a.endpoint,
    region: a.region || "us-east-1",
    bucket: a.bucket,
    prefix: normalizePrefix(a.prefix),
    path_style: a.path_style,
    access_key_id: a.access_key_id,
    secret_access_key: storedSecret,
    checksum_compat: a.checksum_compat,
  };
}

/**
 * One set of rules for a repository's connection, whoever gives it: the
 * wizard (JSON), Settings → Backup → Offsite (a form: checkboxes are "on",
 * an empty secret keeps the saved one) and `coffer … --from s3://…` (flags
 * and the standard AWS variables).
 */
const connectionFields = {
  endpoint: z
    .string()
    .trim()
    .max(500)
    .regex(/^https?:\/\/[^\s/]+/i, "Use an http:// or https:// address, e.g. https://s3.eu-central-1.amazonaws.com.")
    .superRefine((e, ctx) => {
      const problem = endpointProblem(e);
      if (problem) ctx.addIssue({ code: "custom", message: problem.message });
    }),
  region: z.string().trim().max(64).default("us-east-1"),
  bucket: z
    .string()
    .trim()
    .min(1, "Enter the bucket name.")
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "Bucket names are 3-63 lowercase letters, digits, dots and hyphens."),
  prefix: z.string().trim().max(512).regex(/^[A-Za-z0-9._/-]*$/, "Use letters, digits, . _ - and / only.").default(""),
  access_key_id: z.string().trim().min(1, "Enter the access key ID.").max(256),
  secret_access_key: z.string().min(1, "Enter the secret access key.").max(1024),
};

/** A repository's address and keys as the wizard and the CLI give them (for one request in a restore; saved, secret encrypted, by New setup). */
export const connectionSchema = z.object({
  ...connectionFields,
  path_style: z.boolean().default(true),
  checksum_compat: z.boolean().default(true),
});

const checkbox = z.literal("on").optional().transform((v) => v === "on");

/** The same connection as Settings → Backup → Offsite posts it: the secret may be left empty to keep the saved one. */
export const connectionFormSchema = z.object({
  ...connectionFields,
  secret_access_key: z.string().max(1024).optional().default(""),
  enabled: checkbox,
  path_style: checkbox,
  checksum_compat: checkbox,
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
