import fs from "node:fs";
import path from "node:path";
import type { Instance } from "../instance";
import { currentSettings } from "../settings/store";
import { blobPath, SHA256_RE } from "../vault/blobs";
import { unlinkBlobWhenFree } from "../vault/pins";
import { CONTINUOUS_STATE_DIR } from "./litestream";

/**
 * Nothing a point in the continuous window needs is deleted before the
 * window has passed (docs/architecture.md#continuous-protection): when a document is erased (trash
 * purge, delete forever) while continuous protection is on, its vault file
 * stays, marked here by an empty file named after it whose mtime is when it
 * lost its last document. The trash purge job deletes it once the window has
 * passed (at once when protection is off); the doctor does not count it stray.
 */

const DAY_MS = 24 * 3600 * 1000;

const keptDir = (inst: Instance) => path.join(inst.paths.root, CONTINUOUS_STATE_DIR, "kept");

/** How long an erased document's file stays: the window while continuous protection is on, else nothing. */
function keepMs(inst: Instance): number {
  const c = currentSettings(inst.paths.settings).backup.continuous;
  return c.enabled ? c.window_days * DAY_MS : 0;
}

export const keepingForWindow = (inst: Instance) => keepMs(inst) > 0;

/** Mark blobs as kept for the window from now (a marker on a blob a document still names is dropped by the sweep). */
export function markKept(inst: Instance, shas: Iterable<string>): void {
  fs.mkdirSync(keptDir(inst), { recursive: true, mode: 0o700 });
  for (const sha of shas) fs.writeFileSync(path.join(keptDir(inst), sha), "", { mode: 0o600 });
}

/** Called with the blobs that lost their last document: kept for the window, or unlinked (when no backup reads the vault) as before. */
export function releaseBlobs(inst: Instance, shas: string[], stillOrphan: (sha: string) => boolean): void {
  if (keepingForWindow(inst)) return markKept(inst, shas);
  for (const sha of shas) unlinkBlobWhenFree(blobPath(inst.paths, sha), () => stillOrphan(sha));
}

/** Every blob name in a vault directory (vault/<aa>/<sha256>). */
export function vaultBlobNames(vault: string): string[] {
  const out: string[] = [];
  for (const dir of fs.readdirSync(vault)) {
    if (!/^[0-9a-f]{2}$/.test(dir)) continue;
    for (const name of fs.readdirSync(path.join(vault, dir))) if (SHA256_RE.test(name) && name.startsWith(dir)) out.push(name);
  }
  return out;
}

/** The blobs kept for the window now (the doctor's exemption). */
export function keptBlobs(inst: Instance): Set<string> {
  try {
    return new Set(fs.readdirSync(keptDir(inst)).filter((n) => SHA256_RE.test(n)));
  } catch {
    return new Set();
  }
}

/** Delete the kept blobs whose window has passed (or all, with protection off) and that no document has taken back; how many went. */
export function sweepKeptBlobs(inst: Instance, now = Date.now()): number {
  const keep = keepMs(inst);
  const used = inst.db.prepare("SELECT 1 FROM documents WHERE sha256 = ? LIMIT 1");
  let n = 0;
  for (const sha of keptBlobs(inst)) {
    const marker = path.join(keptDir(inst), sha);
    const since = fs.statSync(marker, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (now - since < keep) continue;
    if (!used.get(sha)) {
      unlinkBlobWhenFree(blobPath(inst.paths, sha), () => !used.get(sha));
      n++;
    }
    fs.rmSync(marker, { force: true });
  }
  return n;
}
