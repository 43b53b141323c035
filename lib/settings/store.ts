import fs from "node:fs";
import YAML from "yaml";
import { settingsSchema, type Settings } from "./schema";
import { writeFileAtomic } from "../util/fsatomic";
import { processWide } from "../util/process-wide";

export class SettingsError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

const HEADER =
  "# Coffer settings. Edit by hand or in Settings; changes are picked up without a restart.\n" +
  "# Secrets are stored as enc:v1:… (encrypted with keys/config.key), never in clear.\n";

export function defaultSettings(): Settings {
  return settingsSchema.parse({});
}

/** Parse settings text; errors name the file, the line where YAML knows it, and the field. */
export function parseSettings(file: string, text: string): Settings {
  let raw: unknown;
  try {
    const doc = YAML.parseDocument(text, { prettyErrors: true });
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      const where = e.linePos ? ` (line ${e.linePos[0].line})` : "";
      throw new SettingsError(file, `not valid YAML${where}: ${e.message.split("\n")[0]}`);
    }
    raw = doc.toJS() ?? {};
  } catch (err) {
    if (err instanceof SettingsError) throw err;
    throw new SettingsError(file, `not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const result = settingsSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const issue = result.error.issues[0];
    const at = issue.path.length ? issue.path.join(".") : "(top level)";
    throw new SettingsError(file, `${at}: ${issue.message}${foundText(issue.input)}`);
  }
  return result.data;
}

/** What the file holds where a value is wrong, and why, when a YAML 1.1 tool is the likely cause. */
function foundText(input: unknown): string {
  if (input === undefined) return "";
  const shown = JSON.stringify(input) ?? String(input);
  if (typeof input === "boolean") {
    return `; found ${shown}. A YAML 1.1 tool (PyYAML, Ansible) reads an unquoted off, on, yes or no as true or false: put the word in quotes, e.g. "off".`;
  }
  return `; found ${shown.length > 80 ? shown.slice(0, 77) + "..." : shown}`;
}

export function readSettingsFile(file: string): Settings {
  return parseSettings(file, fs.readFileSync(file, "utf8"));
}

export function writeSettingsFile(file: string, settings: Settings): void {
  const checked = settingsSchema.parse(settings);
  // Written as YAML 1.1 sees it (still plain YAML 1.2 for our reader): strings such as off, yes or
  // 0777 are quoted, so a YAML 1.1 tool that reads and rewrites the file keeps them strings.
  writeFileAtomic(file, HEADER + YAML.stringify(checked, { version: "1.1" }), 0o600);
  // Read afresh from now on, by the listeners too (an mtime can repeat within its granularity).
  cache().delete(file);
  for (const listener of writeListeners()) {
    try {
      listener(file);
    } catch (err) {
      // The settings are saved; a listener that fails (a full backup disk) must not undo that or hide it.
      console.error(`Coffer: after saving ${file}: ${(err as Error).message}`);
    }
  }
}

type SettingsWritten = (file: string) => void;
/** Process-wide: a settings write in one of Next's bundles must reach a listener registered in another. */
const writeListeners = () => processWide("settingsWriteListeners", () => new Set<SettingsWritten>());

/**
 * Call `listener` with the file's path after every settings file this
 * process writes (the one place settings are written). Continuous protection
 * versions settings.yaml with it (lib/continuous/versions.ts) without this
 * floor importing a room above it. Returns the call that stops listening.
 */
export function onSettingsWritten(listener: SettingsWritten): () => void {
  writeListeners().add(listener);
  return () => void writeListeners().delete(listener);
}

interface Cached {
  mtimeMs: number;
  size: number;
  settings: Settings;
  error: string | null;
}

const cacheKey = Symbol.for("coffer.settingsCache");
type CacheMap = Map<string, Cached>;
function cache(): CacheMap {
  const g = globalThis as unknown as Record<symbol, CacheMap>;
  return (g[cacheKey] ??= new Map());
}

/**
 * The settings in force. Re-reads the file when it changed on disk, so hand
 * edits take effect without a restart; a broken edit keeps the last good
 * settings and reports the error (settingsProblem).
 */
export function currentSettings(file: string): Settings {
  const c = cache();
  const st = fs.statSync(file);
  const hit = c.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.settings;
  try {
    const settings = readSettingsFile(file);
    c.set(file, { mtimeMs: st.mtimeMs, size: st.size, settings, error: null });
    return settings;
  } catch (err) {
    if (!hit) throw err;
    const error = (err as Error).message;
    if (hit.error !== error) console.error(`Coffer: settings not reloaded, keeping the previous ones: ${error}`);
    c.set(file, { ...hit, mtimeMs: st.mtimeMs, size: st.size, error });
    return hit.settings;
  }
}

/** The error of the last reload attempt, if the file on disk is broken. */
export function settingsProblem(file: string): string | null {
  currentSettings(file);
  return cache().get(file)?.error ?? null;
}

export function saveSettings(file: string, settings: Settings): void {
  writeSettingsFile(file, settings);
  cache().delete(file);
}

export type { Settings };

/**
 * Changes one part of the backup settings and keeps the rest as the file
 * holds it now: each Settings → Backup form owns its part, so saving the
 * schedule cannot undo an encryption change made a moment earlier.
 */
export function updateBackupSettings(file: string, change: (backup: Settings["backup"]) => Partial<Settings["backup"]>): Settings["backup"] {
  const settings = currentSettings(file);
  const backup = { ...settings.backup, ...change(settings.backup) };
  saveSettings(file, { ...settings, backup });
  return backup;
}
