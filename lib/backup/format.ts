import { z } from "zod";

/** Archive format v1 (DESIGN section 3). */
export const FORMAT_VERSION = 1;
export const META_NAME = "backup_meta.json";
export const MAGIC = "coffer-backup";

export const SCOPES = ["full", "db", "vault", "prerestore"] as const;
export type Scope = (typeof SCOPES)[number];
export const TRIGGERS = ["manual", "schedule", "prerestore", "cli"] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const DB_MEMBERS = ["coffer.db", "settings.yaml", "keys/secret.key", "keys/config.key"] as const;

export const scopeHasDb = (s: Scope) => s !== "vault";
export const scopeHasVault = (s: Scope) => s !== "db";

export const BLOB_MEMBER_RE = /^vault\/([0-9a-f]{2})\/([0-9a-f]{64})$/;
export const DIR_MEMBERS = new Set(["keys/", "vault/"]);
export const VAULT_DIR_RE = /^vault\/[0-9a-f]{2}\/$/;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/** Readers ignore keys they do not know (zod strips them). */
export const metaSchema = z.object({
  magic: z.string(),
  format_version: z.number().int().positive(),
  app_version: z.string(),
  schema_version: z.number().int().nonnegative(),
  created_at: z.string().datetime(),
  scope: z.string(),
  trigger: z.string(),
  members: z.record(z.string(), z.object({ size: z.number().int().nonnegative(), sha256: hex64 })),
  vault: z.object({ objects: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }),
  tables: z.record(z.string(), z.number().int().nonnegative()),
});
export type BackupMeta = z.infer<typeof metaSchema> & { scope: Scope; trigger: Trigger };

/** coffer_<scope>_<YYYYMMDD>_<HHMMSS>Z[_n].tar.gz — the only names Coffer treats as archives. */
export const ARCHIVE_NAME_RE = /^coffer_(full|db|vault|prerestore)_(\d{8})_(\d{6})Z(?:_(\d{1,4}))?\.tar\.gz$/;

export function isArchiveName(name: string): boolean {
  return ARCHIVE_NAME_RE.test(name);
}

export function archiveBaseName(scope: Scope, at: Date, suffix = 0): string {
  const iso = at.toISOString(); // 2026-11-22T14:30:22.123Z
  const stamp = `${iso.slice(0, 10).replace(/-/g, "")}_${iso.slice(11, 19).replace(/:/g, "")}Z`;
  return `coffer_${scope}_${stamp}${suffix ? `_${suffix}` : ""}.tar.gz`;
}

/** When the name says the archive was made (UTC), or null for a non-archive name. */
export function archiveNameDate(name: string): Date | null {
  const m = ARCHIVE_NAME_RE.exec(name);
  if (!m) return null;
  const [d, t] = [m[2], m[3]];
  const date = new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function archiveNameScope(name: string): Scope | null {
  return (ARCHIVE_NAME_RE.exec(name)?.[1] as Scope) ?? null;
}
