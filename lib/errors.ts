import type { AgeErrorCode } from "./crypto/age";

/**
 * Every code an AppError can carry: what API clients and the CLI's --json
 * see and may branch on. A code not listed here does not compile.
 */
export const ERROR_CODES = [
  "ARCHIVE_AFTER_END",
  "ARCHIVE_BAD_ENTRY_TYPE",
  "ARCHIVE_BAD_MEMBER",
  "ARCHIVE_BAD_PATH",
  "ARCHIVE_CORRUPT",
  "ARCHIVE_DUPLICATE_MEMBER",
  "ARCHIVE_MISSING_MEMBER",
  "ARCHIVE_NOT_GZIP",
  "ARCHIVE_TAMPERED",
  "ARCHIVE_TRAILING_DATA",
  "ARCHIVE_TRUNCATED",
  "BACKUP_DIR_NOT_ALLOWED",
  "BACKUP_FAILED",
  "BACKUP_NOT_VERIFIED",
  "BACKUP_NO_DATABASE",
  "BACKUP_TOO_MANY_DOCUMENTS",
  "DOCUMENT_FILE_GONE",
  "BAD_JSON",
  "BAD_NAME",
  "BAD_ORIGIN",
  "BAD_PASSWORD",
  "BAD_SETUP_CODE",
  "BAD_TIME",
  "SNAPSHOT_OR_TIME",
  "BLOB_MISSING",
  "BUSY",
  "CANNOT_REMOVE_ADMIN",
  "CANNOT_REMOVE_SELF",
  "CHECKSUM_MISMATCH",
  "CLIENT_GONE",
  "CONTINUOUS_EMPTY",
  "CONTINUOUS_SETTINGS_MISSING",
  "CONTINUOUS_FILES_GONE",
  "CONTINUOUS_RESTORE_FAILED",
  "CONTINUOUS_SETTINGS_DAMAGED",
  "CONTINUOUS_UNAVAILABLE",
  "DB_BAD_HASH",
  "DB_CORRUPT",
  "DB_FOREIGN",
  "DB_NOT_SQLITE",
  "DOCUMENT_HASH_MISMATCH",
  "DOCUMENT_NOT_IN_BACKUP",
  "DOCUMENT_FILE_NOT_IN_BACKUP",
  "EMPTY_BODY",
  "EXISTS",
  "EXPIRED",
  "FORBIDDEN",
  "FORMAT_TOO_NEW",
  "INSUFFICIENT_STORAGE",
  "KEYS_INVALID",
  "MAINTENANCE",
  "MEMBER_TOO_LARGE",
  "META_BAD_MAGIC",
  "META_INVALID",
  "META_MISSING",
  "NOT_FOUND",
  "NO_INSTANCE",
  "OFFSITE_CORRUPT",
  "OFFSITE_CREDENTIALS",
  "OFFSITE_DENIED",
  "OFFSITE_DNS",
  "OFFSITE_ENDPOINT",
  "OFFSITE_ENDPOINT_FORBIDDEN",
  "OFFSITE_FAILED",
  "OFFSITE_LIST_TOO_LONG",
  "OFFSITE_MISSING",
  "OFFSITE_NAME_MISMATCH",
  "OFFSITE_NOT_COFFER",
  "OFFSITE_NOT_CONFIGURED",
  "OFFSITE_NOT_VERIFIED",
  "OFFSITE_NO_BUCKET",
  "OFFSITE_OTHER_INSTANCE",
  "OFFSITE_OVERSIZE",
  "OFFSITE_REDIRECT",
  "OFFSITE_REGION",
  "OFFSITE_SCOPE",
  "OFFSITE_SECRET",
  "OFFSITE_SETTINGS",
  "OFFSITE_STALLED",
  "OFFSITE_TIMEOUT",
  "OFFSITE_TLS",
  "OFFSITE_UNREACHABLE",
  "OUTSIDE_WINDOW",
  "RATE_LIMITED",
  "RESTORE_CHECK_FAILED",
  "SCHEDULE_INVALID",
  "SCOPE_NOT_RESTORABLE",
  "SERVER_RUNNING",
  "SETTINGS_INVALID",
  "SETUP_COMPLETE",
  "TIME_ZONE_INVALID",
  "TOKEN_EXPIRED",
  "TOKEN_INVALID",
  "TOKEN_NEEDS_ENCRYPTION",
  "TOKEN_NOT_ACCEPTED",
  "TOKEN_PLAIN_ARCHIVE",
  "TOKEN_REVOKED",
  "TOKEN_SCOPE",
  "TOO_LARGE",
  "TOO_MANY_ENTRIES",
  "TOO_MANY_STAGED",
  "UNAUTHORIZED",
  "UPLOAD_INTERRUPTED",
  "USERNAME_TAKEN",
  "VAULT_INCOMPLETE",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number] | AgeErrorCode;

/**
 * An error meant for the person on the other end: a stable code, a sentence,
 * and the HTTP status that fits. Anything else that escapes is a bug (500).
 */
export class AppError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503 | 504 | 507,
    readonly code: ErrorCode,
    message: string,
    readonly fields?: Record<string, string>,
    /** The error this one explains (kept for logs and debugging; the message is what people read). */
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const DISK_FULL_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);

/** Whether a write failed because the disk (or the user's quota) is full; read through `cause` too (streams and libraries wrap it). */
export function isDiskFull(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | null | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string" && DISK_FULL_CODES.has(e.code)) return true;
  }
  return false;
}

/**
 * A full disk anywhere in a handler or action, as the person should hear it: 507 and what to do.
 * Null for any other error. Logged here, once, for whoever runs the server.
 */
export function diskFullError(err: unknown): AppError | null {
  if (!isDiskFull(err)) return null;
  console.error("Coffer: a write failed: the disk is full", err);
  return new AppError(507, "INSUFFICIENT_STORAGE", "The server's disk is full, so this could not be saved. Nothing was changed; free some space on the server and try again.", undefined, { cause: err });
}

export const unauthorized = () => new AppError(401, "UNAUTHORIZED", "Sign in first.");
export const forbidden = (msg = "You do not have permission to do that.") => new AppError(403, "FORBIDDEN", msg);
export const notFound = (what = "That") => new AppError(404, "NOT_FOUND", `${what} was not found.`);
