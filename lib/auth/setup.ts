import fs from "node:fs";
import crypto from "node:crypto";
import { z } from "zod";
import { isSetupComplete, type Instance } from "../instance";
import { writeFileAtomic } from "../util/fsatomic";
import type { Env } from "../paths";
import { AppError } from "../errors";
import { audit, userActor } from "../audit/log";
import { hashPassword } from "./password";
import { usernameSchema, passwordSchema, getUser, type User } from "./users";
import { retryAfter, recordAttempt, minutesText, type Limit } from "./ratelimit";
import { currentSettings, saveSettings } from "../settings/store";
import { AGE_RECIPIENT_RE } from "../settings/schema";
import { parseRecipient } from "../crypto/age";
import { connectionSchema, offsiteSettingsFrom } from "../backup/offsite/location";
import { encryptSecret } from "../settings/secrets";
import { isValidTimeZone } from "../backup/jobs/schedule";
import { writeText } from "../db/job-state";

// No 0/O, 1/I/L, U: a code read aloud or off a log is typed right the first time.
const ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789";

export function generateSetupCode(): string {
  const bytes = crypto.randomBytes(12);
  const chars = Array.from(bytes, (b) => ALPHABET[b % ALPHABET.length]).join("");
  return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8, 12)}`;
}

function normalizeCode(code: string): string {
  return code.toUpperCase().replace(/[^A-Z0-9]/g, "");
}

/**
 * The pending setup code: COFFER_SETUP_TOKEN if set, else the stored one,
 * else a new one. Null once setup is complete (and the file is removed).
 */
export function ensureSetupCode(inst: Instance, env: Env = process.env): string | null {
  if (isSetupComplete(inst)) {
    fs.rmSync(inst.paths.setupToken, { force: true });
    return null;
  }
  const preset = env.COFFER_SETUP_TOKEN?.trim();
  if (preset) {
    if (!fs.existsSync(inst.paths.setupToken) || fs.readFileSync(inst.paths.setupToken, "utf8").trim() !== preset) {
      writeFileAtomic(inst.paths.setupToken, preset + "\n", 0o600);
    }
    return preset;
  }
  if (fs.existsSync(inst.paths.setupToken)) {
    const stored = fs.readFileSync(inst.paths.setupToken, "utf8").trim();
    if (stored) return stored;
  }
  const code = generateSetupCode();
  writeFileAtomic(inst.paths.setupToken, code + "\n", 0o600);
  return code;
}

export const SETUP_CODE_LIMIT: Limit = { max: 10, windowMs: 10 * 60 * 1000 };

export function requireSetupPending(inst: Instance): void {
  if (isSetupComplete(inst)) throw new AppError(403, "SETUP_COMPLETE", "Setup is already complete. Sign in instead.");
}

/**
 * Throws unless `candidate` is the pending setup code. 403 once setup is
 * complete; 429 after too many wrong codes from one address.
 */
export function requireSetupCode(inst: Instance, candidate: string | null | undefined, ip: string | null): void {
  requireSetupPending(inst);
  const key = `setup:${ip ?? "?"}`;
  const wait = retryAfter(key, SETUP_CODE_LIMIT);
  if (wait > 0) throw new AppError(429, "RATE_LIMITED", `Too many wrong setup codes. Try again in ${minutesText(wait)}.`);
  let stored = "";
  try {
    stored = fs.readFileSync(inst.paths.setupToken, "utf8").trim();
  } catch {
    /* no code on disk: nothing can match */
  }
  const a = crypto.createHash("sha256").update(normalizeCode(candidate ?? "")).digest();
  const b = crypto.createHash("sha256").update(normalizeCode(stored)).digest();
  if (!stored || !candidate || !crypto.timingSafeEqual(a, b)) {
    recordAttempt(key, SETUP_CODE_LIMIT);
    throw new AppError(401, "BAD_SETUP_CODE", "That setup code is not right. It is in the server log and in data/setup-token.", {
      token: "That setup code is not right.",
    });
  }
}

/** What New setup does about backups: on unless the admin says otherwise (issue 12: protection on by default). */
export const setupBackupSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** The admin's time zone (the wizard sends the browser's), for the 03:00 run. */
    time_zone: z
      .string()
      .trim()
      .default("UTC")
      .refine((tz) => isValidTimeZone(tz), "Not a time zone this server knows (e.g. UTC or Europe/Berlin)."),
    /** Public age keys (age1…) to encrypt backups for from the start; the wizard makes one and the admin keeps its identity. */
    encryption_recipients: z
      .array(
        z
          .string()
          .regex(AGE_RECIPIENT_RE, "Not an age recipient (age1…).")
          .refine((r) => parseRecipient(r) !== null, "This age recipient has a bad checksum (a typo?)."),
      )
      .max(20)
      .default([]),
    /** An S3-compatible repository the backups are also sent to (the route tests it before setup completes). */
    offsite: connectionSchema.optional(),
  })
  .strict()
  .prefault({});

export const newSetupSchema = z.object({
  token: z.string().min(1, "Enter the setup code."),
  instance_name: z.string().trim().min(1, "Give this instance a name.").max(80, "Use at most 80 characters."),
  username: usernameSchema,
  password: passwordSchema,
  backup: setupBackupSchema,
});

/** Daily at 03:00 in the admin's time zone, kept grandfather-father-son: a week of days, a month of weeks, half a year of months. */
export const PROTECTION_SCHEDULE = "0 3 * * *";
export const PROTECTION_RETENTION = { mode: "gfs", count: 7, days: 30, gfs: { latest: 3, hourly: 0, daily: 7, weekly: 4, monthly: 6 } } as const;

function applyProtection(inst: Instance, backup: z.infer<typeof setupBackupSchema>): void {
  const s = currentSettings(inst.paths.settings);
  const encryption = backup.encryption_recipients.length ? { mode: "recipients" as const, recipients: backup.encryption_recipients, passphrase: null } : s.backup.encryption;
  const o = backup.offsite;
  const offsite = o
    ? offsiteSettingsFrom(o, true, encryptSecret(inst.configKey, o.secret_access_key))
    : s.backup.offsite;
  saveSettings(inst.paths.settings, {
    ...s,
    backup: backup.enabled
      ? { ...s.backup, encryption, offsite, enabled: true, continuous: { ...s.backup.continuous, enabled: true }, schedule: PROTECTION_SCHEDULE, time_zone: backup.time_zone, retention: { ...PROTECTION_RETENTION, gfs: { ...PROTECTION_RETENTION.gfs } } }
      : { ...s.backup, encryption, offsite, enabled: false },
  });
}
export type NewSetupInput = z.input<typeof newSetupSchema>;

/** New setup: the first admin, the instance name, and the setup code retired, all at once. */
export async function completeNewSetup(inst: Instance, raw: NewSetupInput, ip: string | null): Promise<User> {
  const input = newSetupSchema.parse(raw);
  requireSetupCode(inst, input.token, ip);
  const hash = await hashPassword(input.password);
  const user = inst.db.transaction(() => {
    // Checked again inside the transaction: two wizards racing must not both win.
    if (isSetupComplete(inst)) throw new AppError(403, "SETUP_COMPLETE", "Setup is already complete. Sign in instead.");
    const now = new Date().toISOString();
    const info = inst.db
      .prepare("INSERT INTO users (username, password_hash, role, created_at) VALUES (?, ?, 'admin', ?)")
      .run(input.username, hash, now);
    writeText(inst.db, "instance_name", input.instance_name);
    writeText(inst.db, "setup_completed_at", now);
    const actor = userActor({ id: Number(info.lastInsertRowid), username: input.username }, ip);
    audit(inst.db, actor, "setup.complete", input.instance_name, { mode: "new" });
    audit(inst.db, actor, "user.create", input.username, { role: "admin" });
    audit(inst.db, actor, "settings.backup", input.backup.enabled ? PROTECTION_SCHEDULE : "off", { enabled: input.backup.enabled, time_zone: input.backup.time_zone, by: "setup" });
    return getUser(inst, Number(info.lastInsertRowid))!;
  })();
  applyProtection(inst, input.backup);
  fs.rmSync(inst.paths.setupToken, { force: true });
  return user;
}
