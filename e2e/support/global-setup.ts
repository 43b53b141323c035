import fs from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * One temp folder for the whole run, under which every server's data dir is
 * made (tempDataDir), removed when the run ends: a data dir per test adds
 * up (1,315 of them, 14 GB, had piled up in /tmp on this machine).
 */
export default function globalSetup(): () => void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-e2e-run-"));
  process.env.COFFER_E2E_ROOT = root;
  return () => fs.rmSync(root, { recursive: true, force: true });
}
