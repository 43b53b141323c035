import fs from "node:fs";
import path from "node:path";
import { spawn, execSync } from "node:child_process";

/** Resident memory of a process and all its descendants, from /proc (Linux). */
export function treeRss(rootPid: number): number {
  const children = new Map<number, number[]>();
  let total = 0;
  const rss = new Map<number, number>();
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const status = fs.readFileSync(`/proc/${d}/status`, "utf8");
      const ppid = Number(/PPid:\s+(\d+)/.exec(status)?.[1]);
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      rss.set(Number(d), kb * 1024);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid)!.push(Number(d));
    } catch {
      /* gone */
    }
  }
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop()!;
    total += rss.get(p) ?? 0;
    stack.push(...(children.get(p) ?? []));
  }
  return total;
}

/** Samples a process tree's RSS every 50 ms until stopped; returns the peak. */
export function rssSampler(pid: number) {
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, treeRss(pid))), 50);
  return { stop: () => (clearInterval(timer), peak), peak: () => peak };
}

/** Run a shell command, timing it and sampling its process tree's peak RSS. */
export async function measureShell(cmd: string): Promise<{ seconds: number; peakRss: number }> {
  const t0 = performance.now();
  const child = spawn("bash", ["-c", cmd], { stdio: ["ignore", "inherit", "inherit"] });
  const sampler = rssSampler(child.pid!);
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  const peakRss = sampler.stop();
  if (code !== 0) throw new Error(`${cmd} failed (${code})`);
  return { seconds: (performance.now() - t0) / 1000, peakRss };
}

/** The peer tools are Debian's; install what is missing, or say plainly what is. */
export function ensureTools(tools: Record<string, string>): void {
  const missing = Object.entries(tools).filter(([bin]) => !fs.existsSync(`/usr/bin/${bin}`));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))].join(" ");
  try {
    execSync(`apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs}`, { stdio: "inherit" });
  } catch {
    throw new Error(`The benchmark needs ${missing.map(([b]) => b).join(", ")} (Debian: ${pkgs}) and could not install them.`);
  }
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const fmtMiB = (b: number) => `${(b / MiB).toFixed(0)} MiB`;

export function dirBytes(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((a, e) => a + dirBytes(path.join(p, e)), 0);
}

export function table(rows: Record<string, string | number>[]): void {
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i])).join("  ");
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c]))));
}
