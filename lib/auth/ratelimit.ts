import { processWide } from "../util/process-wide";

/**
 * Fixed-window attempt counters kept in process memory (one Coffer process
 * serves an instance). Keys are caller-chosen, e.g. "login:alice|10.0.0.1".
 */
interface Window {
  count: number;
  resetAt: number;
}

const windows = () => processWide("ratelimit", () => new Map<string, Window>());

export interface Limit {
  max: number;
  windowMs: number;
}

/** Seconds until `k` may try again, or 0 if it may try now. */
export function retryAfter(k: string, limit: Limit, now = Date.now()): number {
  const w = windows().get(k);
  if (!w || w.resetAt <= now) return 0;
  return w.count >= limit.max ? Math.ceil((w.resetAt - now) / 1000) : 0;
}

export function recordAttempt(k: string, limit: Limit, now = Date.now()): void {
  const map = windows();
  const w = map.get(k);
  if (!w || w.resetAt <= now) map.set(k, { count: 1, resetAt: now + limit.windowMs });
  else w.count++;
  if (map.size > 10000) for (const [kk, ww] of map) if (ww.resetAt <= now) map.delete(kk);
}

export function clearAttempts(k: string): void {
  windows().delete(k);
}

export function minutesText(seconds: number): string {
  const m = Math.max(1, Math.ceil(seconds / 60));
  return m === 1 ? "a minute" : `${m} minutes`;
}

/**
 * Failures that slow a key down rather than lock it: after `free` failures
 * each further try must wait `baseMs`, doubling per failure up to `maxMs`,
 * counted from the latest failure; `forgetMs` without a failure starts over.
 */
export interface Backoff {
  free: number;
  baseMs: number;
  maxMs: number;
  forgetMs: number;
}

interface Trail {
  count: number;
  last: number;
}

const trails = () => processWide("backoff", () => new Map<string, Trail>());

export function backoffDelayMs(count: number, b: Backoff): number {
  if (count < b.free) return 0;
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.min(30, count - b.free));
}

/** Seconds until `k` may try again under `b`, or 0. */
export function backoffWait(k: string, b: Backoff, now = Date.now()): number {
  const t = trails().get(k);
  if (!t || now - t.last > b.forgetMs) return 0;
  const until = t.last + backoffDelayMs(t.count, b);
  return until > now ? Math.ceil((until - now) / 1000) : 0;
}

export function recordFailure(k: string, b: Backoff, now = Date.now()): void {
  const map = trails();
  const t = map.get(k);
  if (!t || now - t.last > b.forgetMs) map.set(k, { count: 1, last: now });
  else {
    t.count++;
    t.last = now;
  }
  if (map.size > 10000) for (const [kk, tt] of map) if (now - tt.last > b.forgetMs) map.delete(kk);
}

export function clearFailures(k: string): void {
  trails().delete(k);
}

export function waitText(seconds: number): string {
  return seconds < 60 ? `${seconds} second${seconds === 1 ? "" : "s"}` : minutesText(seconds);
}
