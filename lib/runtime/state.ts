import type { Instance } from "../instance";

/**
 * The process's runtime state, shared by instrumentation.ts, route modules
 * and proxy.ts (Next loads them as separate module graphs, so it lives on
 * globalThis). This file imports nothing at run time, so proxy.ts can read
 * it without pulling in the database.
 */
export interface RuntimeState {
  instance?: Instance;
  startedAt?: string;
  /** Set while a restore swaps files: requests get 503. */
  maintenance?: { since: string; reason: string };
  /** Bumped whenever the instance served is replaced (a restore): requests that began before it see a 503, not a 500. */
  generation: number;
  /** Background jobs started once per process (the backup scheduler, the deep check). */
  jobs: { stop(): void }[];
}

const key = Symbol.for("coffer.runtime");

export function runtimeState(): RuntimeState {
  const g = globalThis as unknown as Record<symbol, RuntimeState>;
  return (g[key] ??= { generation: 0, jobs: [] });
}

export function inMaintenance(): boolean {
  return !!runtimeState().maintenance;
}

export function generation(): number {
  return runtimeState().generation;
}
