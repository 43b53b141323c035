import { expect } from "@playwright/test";
import { monitorEventLoopDelay } from "node:perf_hooks";

/**
 * The figures a benchmark promises. Each is printed with its target as it is
 * measured; a bench that misses any fails (non-zero exit), after printing all.
 */
export class Targets {
  private readonly rows: { name: string; value: string; target: string; met: boolean }[] = [];

  /** `value` must be at most `limit`. */
  atMost(name: string, value: number, limit: number, unit = "", digits = 2): void {
    this.add(name, `${value.toFixed(digits)}${unit}`, `<= ${limit.toFixed(digits)}${unit}`, value <= limit);
  }

  /** `value` must be at least `limit`. */
  atLeast(name: string, value: number, limit: number, unit = "", digits = 2): void {
    this.add(name, `${value.toFixed(digits)}${unit}`, `>= ${limit.toFixed(digits)}${unit}`, value >= limit);
  }

  private add(name: string, value: string, target: string, met: boolean): void {
    this.rows.push({ name, value, target, met });
    console.log(`${met ? "  met " : "MISSED"}  ${name}: ${value} (target ${target})`);
  }

  /** Call last: fails the bench if anything was missed. */
  check(): void {
    const missed = this.rows.filter((r) => !r.met);
    expect(missed.map((r) => `${r.name}: ${r.value}, target ${r.target}`), "benchmark targets missed").toEqual([]);
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
