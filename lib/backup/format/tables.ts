import { z } from "zod";
import { LAYOUT } from "../../layout";

/**
 * Archive format v1 (docs/architecture.md#the-archive-format), which mirrors the instance layout (lib/layout.ts):
 * every archive member is named by where it lives in the data directory, so
 * the writer's member list, the reader's whitelist and the restore's swap
 * items all come from the tables below. Safe for client components (labels).
 */
export const FORMAT_VERSION = 1;
export const META_NAME = "backup_meta.json";
export const MAGIC = "coffer-backup";

/** The members of an archive's "instance" part, in archive order: the database, settings and keys. */
export const INSTANCE_MEMBERS = [LAYOUT.database, LAYOUT.settings, LAYOUT.secretKey, LAYOUT.configKey] as const;
export type InstanceMember = (typeof INSTANCE_MEMBERS)[number];

interface ScopeInfo {
  /** Short label for lists. */
  label: string;
  /** What an archive of this scope holds, as a person would say it. */
  contents: string;
  /** Carries the database, settings and keys. */
  instance: boolean;
  /** Carries the document blobs. */
  vault: boolean;
  /** Can be applied by a restore (a vault-only archive has no database to name its blobs). */
  restorable: boolean;
  /** Can be chosen for a backup job, a download or `coffer backup --scope`. */
  selectable: boolean;
}

export const SCOPE_TABLE = {
  full: { label: "Full", contents: "database, settings, keys and document files", instance: true, vault: true, restorable: true, selectable: true },
  db: { label: "Database", contents: "database, settings and keys (no document files)", instance: true, vault: false, restorable: true, selectable: true },
  vault: { label: "Documents only", contents: "document files only (no database, settings or keys)", instance: false, vault: true, restorable: false, selectable: true },
  prerestore: { label: "Before a restore", contents: "database, settings, keys and document files, as they were before a restore", instance: true, vault: true, restorable: true, selectable: false },
} as const satisfies Record<string, ScopeInfo>;

export type Scope = keyof typeof SCOPE_TABLE;
export const SCOPES = Object.keys(SCOPE_TABLE) as Scope[];
/** The scopes a person may choose, as a tuple for z.enum. */
export const SELECTABLE_SCOPES = ["full", "db", "vault"] as const satisfies readonly Scope[];
export type SelectableScope = (typeof SELECTABLE_SCOPES)[number];
export const selectableScopeSchema = z.enum(SELECTABLE_SCOPES);

export const isScope = (s: string): s is Scope => Object.hasOwn(SCOPE_TABLE, s);
export const scopeInfo = (s: Scope): ScopeInfo => SCOPE_TABLE[s];
/** The label for a scope name as read from an archive or a run (unknown ones as they are). */
export const scopeLabel = (s: string) => (isScope(s) ? SCOPE_TABLE[s].label : s);
export const scopeHasInstance = (s: Scope) => SCOPE_TABLE[s].instance;
export const scopeHasVault = (s: Scope) => SCOPE_TABLE[s].vault;

export const TRIGGERS = ["manual", "schedule", "prerestore", "cli"] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** vault/<aa>/<sha256>: a blob, named by the SHA-256 of its content. */
export const BLOB_MEMBER_RE = /^vault\/([0-9a-f]{2})\/([0-9a-f]{64})$/;
export const blobMember = (sha256: string) => `${LAYOUT.vault}/${sha256.slice(0, 2)}/${sha256}`;
export const DIR_MEMBERS = new Set([`${LAYOUT.keysDir}/`, `${LAYOUT.vault}/`]);
export const VAULT_DIR_RE = /^vault\/[0-9a-f]{2}\/$/;

/** May a regular file of this name appear in an archive of this scope (after the meta)? */
export function memberAllowed(name: string, scope: Scope): boolean {
  if ((INSTANCE_MEMBERS as readonly string[]).includes(name)) return scopeHasInstance(scope);
  if (BLOB_MEMBER_RE.test(name)) return scopeHasVault(scope);
  return false;
}

/**
 * The live paths (relative to the data dir) a restore of this scope replaces,
 * in swap order. The database's sidecars are moved aside with it.
 */
export function restoreSwapItems(scope: Scope): string[] {
  const items: string[] = [];
  if (scopeHasInstance(scope)) items.push(LAYOUT.database, ...LAYOUT.databaseSidecars, LAYOUT.settings, LAYOUT.keysDir);
  if (scopeHasVault(scope)) items.push(LAYOUT.vault);
  return items;
}

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

/** Unpacked bytes an archive says it holds: what staging it needs on disk. */
export const metaUnpackedBytes = (meta: BackupMeta) => Object.values(meta.members).reduce((a, m) => a + m.size, 0) + meta.vault.bytes;

export const ARCHIVE_EXTENSION = ".tar.gz";
/** An encrypted archive is the same .tar.gz inside an age v1 file (docs/architecture.md#encryption). */
export const ENCRYPTED_EXTENSION = ".tar.gz.age";
/** coffer_<scope>_<YYYYMMDD>_<HHMMSS>Z[_n].tar.gz[.age] — the only names Coffer treats as archives. */
export const ARCHIVE_NAME_RE = new RegExp(`^coffer_(${SCOPES.join("|")})_(\\d{8})_(\\d{6})Z(?:_(\\d{1,4}))?\\.tar\\.gz(\\.age)?$`);

export function isArchiveName(name: string): boolean {
  return ARCHIVE_NAME_RE.test(name);
}

export function isEncryptedArchiveName(name: string): boolean {
  return ARCHIVE_NAME_RE.exec(name)?.[5] === ".age";
}

export function archiveBaseName(scope: Scope, at: Date, suffix = 0, encrypted = false): string {
  const iso = at.toISOString(); // 2026-11-22T14:30:22.123Z
  const stamp = `${iso.slice(0, 10).replace(/-/g, "")}_${iso.slice(11, 19).replace(/:/g, "")}Z`;
  return `coffer_${scope}_${stamp}${suffix ? `_${suffix}` : ""}${encrypted ? ENCRYPTED_EXTENSION : ARCHIVE_EXTENSION}`;
}

/** When the name says the archive was made (UTC), or null for a non-archive name. */
export function archiveNameDate(name: string): Date | null {
  const m = ARCHIVE_NAME_RE.exec(name);
  if (!m) return null;
  const [d, t] = [m[2], m[3]];
  const date = new Date(`${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${t.slice(0, 2)}:${t.slice(2, 4)}:${t.slice(4, 6)}Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * Newest first by what the names say: the second, then the suffix freeArchiveName adds within it.
 * Names, not created_at: a plain archive's meta has milliseconds and an encrypted one's only its
 * name's second, so two made in one second would otherwise sort by how precise they are.
 */
export function compareArchiveNamesNewestFirst(a: string, b: string): number {
  const order = (n: string) => {
    const m = ARCHIVE_NAME_RE.exec(n);
    return m ? [Number(m[2]), Number(m[3]), Number(m[4] ?? 0)] : [0, 0, 0];
  };
  const [x, y] = [order(a), order(b)];
  return y[0] - x[0] || y[1] - x[1] || y[2] - x[2] || (a < b ? 1 : a > b ? -1 : 0);
}

export function archiveNameScope(name: string): Scope | null {
  return (ARCHIVE_NAME_RE.exec(name)?.[1] as Scope) ?? null;
}
