import type { Instance } from "../instance";
import { Ticker } from "../util/ticker";
import { lastDoctorReport, runDoctor, type DoctorReport } from "./index";
import { readMs, writeMs } from "../db/job-state";
import { DAY_MS } from "../util/time";

export const DEEP_CHECK_EVERY_MS = 7 * DAY_MS;

const runningKey = Symbol.for("coffer.deepCheckRunning");

/** One deep check at a time in this process: a second request joins the one running. */
export function runDeepCheck(inst: Instance): Promise<DoctorReport> {
  const g = globalThis as unknown as Record<symbol, Promise<DoctorReport> | undefined>;
  g[runningKey] ??= runDoctor(inst, { deep: true }).finally(() => (g[runningKey] = undefined));
  return g[runningKey];
}

/**
 * The doctor's deep check once a week, on its own timer: it reads every
 * blob, and must neither delay a scheduled backup nor hold the event loop.
 */
export class DeepCheckJob {
  private readonly ticker = new Ticker(() => this.tick());
  private readonly now: () => number;
  private readonly log: (line: string) => void;

  constructor(
    private readonly instance: () => Instance | null,
    opts: { now?: () => number; log?: (line: string) => void } = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? ((l) => console.log(`Coffer: ${l}`));
  }

  start(tickMs = 15 * 60 * 1000): void {
    this.ticker.start(tickMs);
  }

  stop(): void {
    this.ticker.stop();
  }

  /** Runs the deep check if it is due. Never rejects. */
  async tick(): Promise<"ran" | "idle"> {
    try {
      const inst = this.instance();
      if (!inst) return "idle";
      const now = this.now();
      const last = lastDoctorReport(inst, true);
      if (last && now - Date.parse(last.at) < DEEP_CHECK_EVERY_MS) return "idle";
      if (!last) {
        // Not on the first start of a new instance: a week after it.
        const from = readMs(inst.db, "deep_check_due_from");
        if (!from) writeMs(inst.db, "deep_check_due_from", now + DEEP_CHECK_EVERY_MS);
        if (!from || now < Number(from)) return "idle";
      }
      const report = await runDeepCheck(inst);
      const bad = report.findings.filter((f) => f.severity !== "ok");
      if (bad.length) this.log(`weekly deep check: ${bad.map((f) => `${f.check} (${f.message})`).join("; ")}`);
      return "ran";
    } catch (err) {
      this.log(`deep check failed: ${(err as Error).message}`);
      return "idle";
    }
  }
}
