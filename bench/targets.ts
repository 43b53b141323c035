import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { expect } from "@playwright/test";
import { monitorEventLoopDelay } from "node:perf_hooks";

/** Where this run was measured: printed with every bench's table and saved with its figures. */
export function benchContext(): { commit: string; node: string; cores: number; cpu: string } {
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    if (dirty) commit += " (with uncommitted changes)";
  } catch {
    // not a checkout: say so rather than guess
  }
  return { commit, node: process.version, cores: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? "unknown" };
}

/** Tables a bench printed (support.ts's table()), saved beside its targets. */
export const printedTables: Record<string, string | number>[][] = [];

/**
 * The figures a benchmark promises. Each is printed with its target as it is
 * measured; a bench that misses any fails (non-zero exit), after printing all.
 * A figure that is not a finite number (NaN: the bench measured nothing) is a
 * miss, never a pass. check() writes the run's figures to
 * <BENCH_DIR>/results/<bench>-<time>.json so that two runs can be compared.
 */
export class Targets {
  private readonly rows: { name: string; value: number | null; shown: string; limit: number; kind: "at most" | "at least"; target: string; met: boolean }[] = [];
  private readonly context = benchContext();

  constructor(private readonly bench: string) {
    console.log(`\n${bench}: commit ${this.context.commit}, Node ${this.context.node}, ${this.context.cores} cores (${this.context.cpu})`);
  }

  /** `value` must be at most `limit`. */
  atMost(name: string, value: number, limit: number, unit = "", digits = 2): void {
    this.add(name, value, limit, "at most", unit, digits);
  }

  /** `value` must be at least `limit`. */
  atLeast(name: string, value: number, limit: number, unit = "", digits = 2): void {
    this.add(name, value, limit, "at least", unit, digits);
  }

  private add(name: string, value: number, limit: number, kind: "at most" | "at least", unit: string, digits: number): void {
    const finite = Number.isFinite(value);
    const met = finite && (kind === "at most" ? value <= limit : value >= limit);
    const shown = finite ? `${value.toFixed(digits)}${unit}` : `${value} (nothing was measured)`;
    const target = `${kind === "at most" ? "<=" : ">="} ${limit.toFixed(digits)}${unit}`;
    this.rows.push({ name, value: finite ? value : null, shown, limit, kind, target, met });
    console.log(`${met ? "  met " : "MISSED"}  ${name}: ${shown} (target ${target})`);
  }

  /** Call last: saves the figures, then fails the bench if anything was missed. */
  check(): void {
    const dir = path.join(path.resolve(process.env.BENCH_DIR ?? ".bench"), "results");
    fs.mkdirSync(dir, { recursive: true });
    const at = new Date().toISOString();
    const file = path.join(dir, `${this.bench}-${at.replace(/[:.]/g, "-")}.json`);
    fs.writeFileSync(file, JSON.stringify({ bench: this.bench, at, ...this.context, targets: this.rows, tables: printedTables }, null, 2) + "\n");
    console.log(`Figures saved to ${path.relative(process.cwd(), file)}`);
    const missed = this.rows.filter((r) => !r.met);
    expect(missed.map((r) => `${r.name}: ${r.shown}, target ${r.target}`), "benchmark targets missed").toEqual([]);
  }
}

/** p50/p99/max event-loop delay of this process while `work` runs, in milliseconds. */
export async function eventLoopDelay<T>(work: () => Promise<T>): Promise<{ result: T; p50: number; p99: number; max: number }> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  try {
    const result = await work();
    return { result, p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
  } finally {
    h.disable();
  }
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
