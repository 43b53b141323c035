import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { z } from "zod";
import { KEY_BYTES, type Instance } from "../instance";
import { AppError } from "../errors";
import { parseSettings } from "../settings/store";
import { writeFileAtomic } from "../util/fsatomic";
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "../util/modes";
import { continuousPlan, replicaWindow } from "./litestream";

/**
 * Settings and keys versioned beside the continuous replica
 * (docs/architecture.md#continuous-protection), so a point in time restores
 * with the settings.yaml and keys that were in effect then. Each version is
 * one file, `<replica>/settings/<UTC time>-<sha256>.json`, holding
 * settings.yaml's text and both keys (the secrets in settings.yaml are
 * encrypted with that config.key, so they travel together), written
 * atomically, 0600 in a 0700 directory. A version is written when the
 * content differs from the newest one: after every settings write in this
 * process, on each supervisor tick (hand edits, keys), and when Litestream
 * starts. The name's hash is the content's, so a damaged file is told by
 * its name; a version read back is checked like any outside input.
 */

export const SETTINGS_VERSIONS_DIR = "settings";
/** A settings.yaml is a few KiB; anything this large is not one Coffer wrote. */
const MAX_VERSION_BYTES = 1024 * 1024;
export const VERSION_NAME_RE = /^(\d{8}T\d{6}\.\d{3}Z)-([0-9a-f]{64})\.json$/;
const FORMAT = "coffer-settings-version";
const DAY_MS = 24 * 3600 * 1000;

export interface SettingsVersion {
  /** From when these settings and keys were in effect. */
  at: Date;
  sha256: string;
  file: string;
}

export interface SettingsVersionContent {
  settings: string;
  secretKey: Buffer;
  configKey: Buffer;
}

export const settingsVersionsDir = (replica: string) => path.join(replica, SETTINGS_VERSIONS_DIR);

const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, "");
const unstamp = (s: string) => Date.parse(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13)}`);

function contentHash(c: SettingsVersionContent): string {
  return crypto.createHash("sha256").update(JSON.stringify([c.settings, c.secretKey.toString("base64"), c.configKey.toString("base64")])).digest("hex");
}

/** Every version in the replica, oldest first (other names, and .partial files of a write cut short, are not versions). */
export function listSettingsVersions(replica: string): SettingsVersion[] {
  let names: string[];
  try {
    names = fs.readdirSync(settingsVersionsDir(replica));
  } catch {
    return [];
  }
  const out: SettingsVersion[] = [];
  for (const n of names) {
    const m = VERSION_NAME_RE.exec(n);
    const at = m ? unstamp(m[1]) : NaN;
    if (m && !Number.isNaN(at)) out.push({ at: new Date(at), sha256: m[2], file: path.join(settingsVersionsDir(replica), n) });
  }
  return out.sort((a, b) => a.at.getTime() - b.at.getTime() || a.file.localeCompare(b.file));
}

/** The version in effect at `at`: the newest at or before it, or null when none is that old. */
export function settingsVersionAt(replica: string, at: Date): SettingsVersion | null {
  let found: SettingsVersion | null = null;
  for (const v of listSettingsVersions(replica)) if (v.at.getTime() <= at.getTime()) found = v;
  return found;
}

/** The instance's settings and keys on disk now. */
function currentContent(inst: Instance): SettingsVersionContent {
  return { settings: fs.readFileSync(inst.paths.settings, "utf8"), secretKey: fs.readFileSync(inst.paths.secretKey), configKey: fs.readFileSync(inst.paths.configKey) };
}

/** Whether content may become a version: a settings.yaml that does not parse is a broken hand edit, and the previous settings stay in force. */
function usable(inst: Instance, c: SettingsVersionContent): boolean {
  if (Buffer.byteLength(c.settings) > MAX_VERSION_BYTES || c.secretKey.length !== KEY_BYTES || c.configKey.length !== KEY_BYTES) return false;
  try {
    parseSettings(inst.paths.settings, c.settings);
    return true;
  } catch {
    return false;
  }
}

const envelopeSchema = z
  .object({
    format: z.literal(FORMAT),
    version: z.literal(1),
    at: z.string().max(64),
    settings: z.string().max(MAX_VERSION_BYTES),
    secret_key: z.string().max(128),
    config_key: z.string().max(128),
  })
  .strict();

/**
 * Record the settings and keys on disk now as a version, unless continuous
 * protection is off or they equal the newest version. Its time is now, or,
 * given `since` (when a tick last found them unchanged), the files' mtime
 * if that falls between then and now: a hand edit is dated when it was made.
 */
export function recordSettingsVersion(inst: Instance, opts: { now?: number; since?: number } = {}): SettingsVersion | null {
  const plan = continuousPlan(inst);
  if (!plan.enabled) return null;
  const content = currentContent(inst);
  const sha256 = contentHash(content);
  const versions = listSettingsVersions(plan.replica);
  const newest = versions[versions.length - 1];
  // Each tick comes here: the same content as the newest version costs a hash, not a parse.
  if (newest?.sha256 === sha256 || !usable(inst, content)) return null;
  const now = opts.now ?? Date.now();
  const changed = Math.max(...[inst.paths.settings, inst.paths.secretKey, inst.paths.configKey].map((f) => fs.statSync(f).mtimeMs));
  let at = Math.min(now, Math.max(opts.since ?? now, Math.floor(changed)));
  // Versions stay in order whatever the clock did.
  if (newest && at <= newest.at.getTime()) at = newest.at.getTime() + 1;
  const dir = settingsVersionsDir(plan.replica);
  fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  fs.chmodSync(dir, PRIVATE_DIR_MODE);
  const file = path.join(dir, `${stamp(at)}-${sha256}.json`);
  const envelope: z.infer<typeof envelopeSchema> = {
    format: FORMAT,
    version: 1,
    at: new Date(at).toISOString(),
    settings: content.settings,
    secret_key: content.secretKey.toString("base64"),
    config_key: content.configKey.toString("base64"),
  };
  writeFileAtomic(file, JSON.stringify(envelope) + "\n", PRIVATE_FILE_MODE);
  pruneSettingsVersionsFor(inst, now);
  return { at: new Date(at), sha256, file };
}

/**
 * Delete the versions no point in the window needs: every version older than
 * `keepFrom` except the newest of them, which is in effect at keepFrom (the
 * window's first second has its settings). How many went.
 */
export function pruneSettingsVersions(replica: string, keepFrom: number): number {
  const versions = listSettingsVersions(replica);
  let inEffect = -1;
  versions.forEach((v, i) => {
    if (v.at.getTime() <= keepFrom) inEffect = i;
  });
  for (const v of versions.slice(0, Math.max(0, inEffect))) fs.rmSync(v.file, { force: true });
  return Math.max(0, inEffect);
}

/** Prune to what this instance's window needs: from the window's start or the replica's first restorable second, whichever is earlier. */
export function pruneSettingsVersionsFor(inst: Instance, now = Date.now()): number {
  const plan = continuousPlan(inst);
  const first = replicaWindow(plan.replica).first?.getTime() ?? Infinity;
  return pruneSettingsVersions(plan.replica, Math.min(now - plan.windowDays * DAY_MS, first));
}

function damaged(v: SettingsVersion, why: string): AppError {
  return new AppError(
    422,
    "CONTINUOUS_SETTINGS_DAMAGED",
    `The settings kept for ${v.at.toISOString()} (${path.basename(v.file)}) are damaged: ${why}. Coffer does not restore settings it cannot trust; restore from a backup archive of that time instead.`,
  );
}

/** A version's content, checked as outside input: size, shape, the hash its name gives, settings by the app's own schema, keys by their size. */
export function readSettingsVersion(v: SettingsVersion): SettingsVersionContent {
  let text: string;
  const fd = fs.openSync(v.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw damaged(v, "it is not a regular file");
    if (st.size > MAX_VERSION_BYTES) throw damaged(v, `it is ${st.size} bytes, more than a settings version holds`);
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = fs.readSync(fd, buf, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
    text = buf.subarray(0, got).toString("utf8");
  } finally {
    fs.closeSync(fd);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw damaged(v, "it is not valid JSON");
  }
  const parsed = envelopeSchema.safeParse(raw);
  if (!parsed.success) throw damaged(v, `it is not a settings version (${parsed.error.issues[0].path.join(".") || "top level"}: ${parsed.error.issues[0].message})`);
  const e = parsed.data;
  const content: SettingsVersionContent = { settings: e.settings, secretKey: Buffer.from(e.secret_key, "base64"), configKey: Buffer.from(e.config_key, "base64") };
  if (content.secretKey.length !== KEY_BYTES || content.configKey.length !== KEY_BYTES) throw damaged(v, `its keys are not ${KEY_BYTES} bytes each`);
  if (contentHash(content) !== v.sha256) throw damaged(v, "its content does not match the SHA-256 in its name");
  if (Date.parse(e.at) !== v.at.getTime()) throw damaged(v, "the time inside it is not the time in its name");
  try {
    parseSettings(path.basename(v.file), e.settings);
  } catch (err) {
    throw damaged(v, `its settings.yaml is not valid (${(err as Error).message})`);
  }
  return content;
}
