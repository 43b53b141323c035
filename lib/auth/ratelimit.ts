/**
 * Fixed-window attempt counters kept in process memory (one Coffer process
 * serves an instance). Keys are caller-chosen, e.g. "login:alice|10.0.0.1".
 */
interface Window {
  count: number;
  resetAt: number;
}

const key = Symbol.for("coffer.ratelimit");
function windows(): Map<string, Window> {
  const g = globalThis as unknown as Record<symbol, Map<string, Window>>;
  return (g[key] ??= new Map());
}

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
