import { Cron } from "croner";
import { AppError } from "../../errors";

export const INTERVALS: Record<string, number> = {
  hourly: 3600 * 1000,
  daily: 24 * 3600 * 1000,
  weekly: 7 * 24 * 3600 * 1000,
};

export type ParsedSchedule = { kind: "interval"; ms: number } | { kind: "cron"; cron: Cron };

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** hourly | daily | weekly, or a 5-field cron expression read in `timeZone`. */
export function parseSchedule(schedule: string, timeZone: string): ParsedSchedule {
  const s = schedule.trim();
  if (INTERVALS[s]) return { kind: "interval", ms: INTERVALS[s] };
  if (!isValidTimeZone(timeZone)) throw new AppError(400, "TIME_ZONE_INVALID", `"${timeZone}" is not a time zone this server knows (try Europe/Berlin or UTC).`);
  if (s.split(/\s+/).length !== 5) {
    throw new AppError(400, "SCHEDULE_INVALID", "Use hourly, daily, weekly, or a cron expression with 5 fields (minute hour day month weekday).");
  }
  try {
    return { kind: "cron", cron: new Cron(s, { timezone: timeZone, paused: true }) };
  } catch (err) {
    throw new AppError(400, "SCHEDULE_INVALID", `That cron expression is not valid: ${(err as Error).message}.`, undefined, { cause: err });
  }
}

/** The next `n` runs after `now`. Intervals count from the last success (or now, if none). */
export function nextRuns(s: ParsedSchedule, lastSuccessMs: number | null, now: number, n = 3): number[] {
  if (s.kind === "cron") return s.cron.nextRuns(n, new Date(now)).map((d) => d.getTime());
  const first = lastSuccessMs === null ? now : Math.max(now, lastSuccessMs + s.ms);
  return Array.from({ length: n }, (_, i) => first + i * s.ms);
}

/** The most recent cron slot at or before `now`, or null. */
export function latestSlot(s: ParsedSchedule & { kind: "cron" }, now: number): number | null {
  // nextRun from a little before `now`, stepping back a day at most: cron slots are at least a minute apart.
  const prev = s.cron.previousRuns(1, new Date(now + 1));
  return prev.length ? prev[0].getTime() : null;
}

/** How long without a success counts as stale: twice the interval, or twice the gap between cron slots. */
export function stalePeriodMs(s: ParsedSchedule, now: number): number {
  if (s.kind === "interval") return 2 * s.ms;
  const [a, b] = s.cron.nextRuns(2, new Date(now)).map((d) => d.getTime());
  return 2 * Math.max(60_000, (b ?? a) - a || 60_000);
}
