import fs from "node:fs";
import path from "node:path";
import { LAYOUT } from "../layout";
import type { DataPaths } from "../paths";

/**
 * Everything in a data directory is private to the user Coffer runs as: the
 * database holds every document's name and every password hash, the vault
 * every document. Directories 0700, files 0600, whatever the umask.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** The data directory's own entries (not the trees under vault, backups, .staging, .tmp). */
function topLevel(paths: DataPaths): string[] {
  const at = (rel: string) => path.join(paths.root, ...rel.split("/"));
  return [
    paths.root,
    ...[LAYOUT.database, ...LAYOUT.databaseSidecars, LAYOUT.settings, LAYOUT.keysDir, LAYOUT.secretKey, LAYOUT.configKey, LAYOUT.setupToken, LAYOUT.instanceId, LAYOUT.lock].map(at),
    ...[LAYOUT.vault, LAYOUT.backups, LAYOUT.staging, LAYOUT.tmp, LAYOUT.lostFound].map(at),
  ];
}

/** Trees walked by the deep check: every file Coffer wrote. */
function trees(paths: DataPaths): string[] {
  return [paths.vault, paths.staging, paths.tmp, paths.backups, paths.lostFound];
}

function widerThanPrivate(st: fs.Stats): boolean {
  return (st.mode & 0o077) !== 0;
}

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await fs.promises.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (e.isSymbolicLink()) continue;
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) await walk(p, out);
  }
}

/**
 * Paths with group or other permission bits. Quick: the data directory's
 * own entries; deep: every file under it too. A backup directory chosen
 * outside the data directory is the operator's, and left alone.
 */
export async function openModes(paths: DataPaths, deep: boolean): Promise<string[]> {
  const candidates = topLevel(paths);
  if (deep) for (const t of trees(paths)) if (t.startsWith(paths.root + path.sep)) await walk(t, candidates);
  const out: string[] = [];
  for (const p of candidates) {
    const st = await fs.promises.lstat(p).catch(() => null);
    if (st && !st.isSymbolicLink() && widerThanPrivate(st)) out.push(p);
  }
  return out;
}

export function openModesSync(paths: DataPaths): string[] {
  return topLevel(paths).filter((p) => {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    return !!st && !st.isSymbolicLink() && widerThanPrivate(st);
  });
}

/** Clear group and other bits: `0644` becomes `0600`, `0755` becomes `0700`. */
export function makePrivate(files: string[]): number {
  let n = 0;
  for (const p of files) {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st || st.isSymbolicLink() || !widerThanPrivate(st)) continue;
    fs.chmodSync(p, st.mode & 0o700);
    n++;
  }
  return n;
}

export function describeMode(root: string, p: string): string {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  const rel = path.relative(root, p) || ".";
  return st ? `${rel} has mode ${(st.mode & 0o777).toString(8).padStart(3, "0")}` : rel;
}
