import type { Instance } from "../../instance";
import { isSetupComplete } from "../../instance";
import { Ticker } from "../../util/ticker";
import { currentSettings } from "../../settings/store";
import { verifySlice, verificationSummary, SLICE_EVERY_MS, type VerificationSummary } from "./verify";
import { runDrill, drillDue } from "./drill";
import { lastDrill, type Drill } from "./drills-table";
import { firstSuccess, lastSuccess } from "../runs";
import { alert, type SendOptions } from "../alerts";
import { readText, writeText } from "../../db/job-state";
import { DAY_MS } from "../../util/time";

const runningKey = Symbol.for("coffer.proofRunning");

/**
 * One proof job at a time in this process (a slice, a drill, or a drill
 * asked for in Settings): a second caller waits for the first to end.
 */
export function exclusively<T>(work: () => Promise<T>): Promise<T> {
  const g = globalThis as unknown as Record<symbol, Promise<unknown> | undefined>;
  const before = g[runningKey] ?? Promise.resolve();
  const mine = before.catch(() => {}).then(work);
  g[runningKey] = mine.catch(() => {});
  return mine;
}

/**
 * Rolling verification (a slice an hour) and scheduled restore drills, on
 * their own timer: neither delays a backup nor takes the instance lock.
 */
export class ProofJob {
  private readonly ticker = new Ticker(() => this.tick());
  private readonly now: () => number;
  private readonly log: (line: string) => void;

  constructor(
    private readonly instance: () => Instance | null,
    private readonly opts: { now?: () => number; log?: (line: string) => void; alertOptions?: SendOptions } = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? ((l) => console.log(`Coffer: ${l}`));
  }

  start(tickMs = 5 * 60 * 1000): void {
    this.ticker.start(tickMs);
  }

  stop(): void {
    this.ticker.stop();
  }

  private alertOverdue(inst: Instance, now: number): Promise<void> {
    return alertOverdueDrill(inst, now, this.log, this.opts.alertOptions);
  }

  /** Runs what is due. Never rejects. */
  async tick(): Promise<{ slice: boolean; drill: Drill | null }> {
    const done = { slice: false, drill: null as Drill | null };
    try {
      const inst = this.instance();
      if (!inst || !isSetupComplete(inst)) return done;
      const now = this.now();
      const last = readText(inst.db, "verify_last_slice_at");
      if (!last || now - Date.parse(last) >= SLICE_EVERY_MS) {
        const r = await exclusively(() => verifySlice(inst, { now: () => new Date(this.now()), log: this.log, alertOptions: this.opts.alertOptions }));
        if (r.offsiteError) this.log(`verification could not reach the offsite repository: ${r.offsiteError}`);
        done.slice = true;
      }
      // A drill needs a backup to restore: none is due before the first one exists.
      if (lastSuccess(inst.db) && drillDue(inst, now)) {
        done.drill = await exclusively(() => runDrill(inst, { trigger: "schedule", log: this.log, alertOptions: this.opts.alertOptions }));
      }
      await this.alertOverdue(inst, now);
    } catch (err) {
      this.log(`proof job failed: ${(err as Error).message}`);
    }
    return done;
  }
}

/** Once per episode (until a drill passes again), like a stale backup: drills keep being skipped or failing. */
async function alertOverdueDrill(inst: Instance, now: number, log: (line: string) => void, alertOptions?: SendOptions): Promise<void> {
  const p = proofSummary(inst, now);
  if (!p.drill_overdue) return;
  const episode = p.last_proven_restore?.at ?? "never";
  if (readText(inst.db, "drill_overdue_alert_for") === episode) return;
  writeText(inst.db, "drill_overdue_alert_for", episode);
  const why = p.last_drill?.error ? ` The last one: ${p.last_drill.error}` : "";
  log(`no restore drill has passed in ${2 * p.drills_every_days} days`);
  await alert(inst, "drill.overdue", `No restore drill has passed in ${2 * p.drills_every_days} days: nothing proves the backups restore.${why}`, p.last_proven_restore?.at ?? null, alertOptions);
}

export interface ProofSummary {
  verification: VerificationSummary;
  drills_every_days: number;
  last_drill: Drill | null;
  /** The last drill that passed: when, which backup, and the measured recovery time. */
  last_proven_restore: { at: string; archive: string; source: string; seconds: number } | null;
  /** Drills are on and none passed within twice their interval (counted from the first backup when none ever did). */
  drill_overdue: boolean;
}

export function proofSummary(inst: Instance, now = Date.now()): ProofSummary {
  const every = currentSettings(inst.paths.settings).backup.proof.drill_every_days;
  const ok = lastDrill(inst.db, "success");
  const first = firstSuccess(inst.db, "local")?.finished_at;
  const since = ok?.finished_at ?? first ?? null;
  return {
    verification: verificationSummary(inst, now),
    drills_every_days: every,
    last_drill: lastDrill(inst.db),
    last_proven_restore: ok ? { at: ok.finished_at!, archive: ok.archive!, source: ok.source!, seconds: ok.seconds! } : null,
    drill_overdue: every > 0 && since !== null && now - Date.parse(since) > 2 * every * DAY_MS,
  };
}
