import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../../instance";
import type { Env } from "../../paths";
import { AppError } from "../../errors";
import { currentSettings } from "../../settings/store";
import { LAYOUT } from "../../layout";

/** Directories a backup directory may be in: the data dir, and COFFER_BACKUP_ROOTS. */
export function backupRoots(inst: Instance, env: Env = process.env): string[] {
  const extra = (env.COFFER_BACKUP_ROOTS ?? "").split(path.delimiter).filter(Boolean);
  return [inst.paths.root, ...extra].map((r) => {
    try {
      return fs.realpathSync(r);
    } catch {
      return path.resolve(r);
    }
  });
}

function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/** Coffer's own directories inside the data dir: never a backup directory, never offered. */
const INTERNAL_DIRS = [LAYOUT.keysDir, LAYOUT.vault, LAYOUT.staging, LAYOUT.tmp, LAYOUT.lostFound];

/** The real path `p` would have: symlinks resolved in the part that exists, the rest appended. */
function realPathOf(p: string): string {
  const rest: string[] = [];
  let at = p;
  while (!fs.existsSync(at)) {
    rest.unshift(path.basename(at));
    at = path.dirname(at);
  }
  return path.join(fs.realpathSync(at), ...rest);
}

/**
 * The configured backup directory. Relative paths are relative to the data
 * dir, and a leading "data/" names the data dir itself (so the default
 * "data/backups" reads naturally). After resolving symlinks it must lie in
 * the data dir or a COFFER_BACKUP_ROOTS directory, and not in one of
 * Coffer's own directories; it is created only once it passes.
 */
export function resolveBackupDir(inst: Instance, configured: string, env: Env = process.env): string {
  let p = configured.trim();
  if (!path.isAbsolute(p)) {
    p = p.replace(/^\.\//, "");
    if (p === "data" || p.startsWith("data/")) p = p.slice(4).replace(/^\//, "");
    p = path.join(inst.paths.root, p);
  }
  const real = realPathOf(path.resolve(p));
  if (!backupRoots(inst, env).some((r) => inside(real, r))) {
    throw new AppError(422, "BACKUP_DIR_NOT_ALLOWED", `The backup directory ${real} is outside the data directory and COFFER_BACKUP_ROOTS.`);
  }
  const root = fs.realpathSync(inst.paths.root);
  if (INTERNAL_DIRS.some((d) => inside(real, path.join(root, d)))) {
    throw new AppError(422, "BACKUP_DIR_NOT_ALLOWED", `${real} is one of Coffer's own directories; choose another (for example data/backups).`);
  }
  fs.mkdirSync(real, { recursive: true, mode: 0o700 });
  return fs.realpathSync(real);
}

export function currentBackupDir(inst: Instance): string {
  return resolveBackupDir(inst, currentSettings(inst.paths.settings).backup.directory);
}

const NOT_FOR_BACKUPS = new Set<string>(INTERNAL_DIRS);

/**
 * Directories the chooser offers: each root (the data dir, COFFER_BACKUP_ROOTS)
 * and the directories directly inside it, after resolving symlinks; ones that
 * resolve outside every root are left out.
 */
export function backupDirChoices(inst: Instance, env: Env = process.env): string[] {
  const roots = backupRoots(inst, env);
  const out = new Set<string>();
  for (const root of roots) {
    if (!fs.existsSync(root)) continue;
    out.add(root);
    for (const e of fs.readdirSync(root, { withFileTypes: true })) {
      if (NOT_FOR_BACKUPS.has(e.name) || e.name.startsWith(".")) continue;
      const p = path.join(root, e.name);
      try {
        const real = fs.realpathSync(p);
        if (fs.statSync(real).isDirectory() && roots.some((r) => inside(real, r))) out.add(real);
      } catch {
        /* dangling link */
      }
    }
  }
  return [...out].sort();
}

/** How a chosen directory is written to settings.yaml: relative ("data/…") when inside the data dir, so it survives a move. */
export function backupDirSetting(inst: Instance, chosen: string): string {
  const root = fs.realpathSync(inst.paths.root);
  const rel = path.relative(root, chosen);
  if (rel === "") return "data";
  if (!rel.startsWith("..") && !path.isAbsolute(rel)) return `data/${rel.split(path.sep).join("/")}`;
  return chosen;
}
