import fs from "node:fs";
import path from "node:path";

const FILE = "server.pid";

/** The running server records its pid in the data dir, so the CLI can refuse to restore under it. */
export function recordServerPid(dataDir: string): void {
  const file = path.join(dataDir, FILE);
  fs.writeFileSync(file, String(process.pid));
  process.once("exit", () => {
    try {
      if (fs.readFileSync(file, "utf8") === String(process.pid)) fs.rmSync(file);
    } catch {
      /* already gone */
    }
  });
}

/** The pid of a live server on this data dir, or null (a pid file left by a killed server does not count). */
export function runningServer(dataDir: string): number | null {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(dataDir, FILE), "utf8"));
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM" ? pid : null;
  }
}
