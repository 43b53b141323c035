// Tiny helper: run a command with inherited stdio and fail loudly.
import { spawnSync } from "node:child_process";

export function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1", ...env } });
  if (r.status !== 0) {
    console.error(`\n${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}).`);
    process.exit(r.status ?? 1);
  }
}

export const bin = (name) => `node_modules/.bin/${name}`;

/**
 * How the server process runs (npm start; the e2e and bench harness use the same):
 * --expose-gc lets archive streaming free spent buffers early (lib/util/gc.ts),
 * and a 4 MiB young generation keeps V8 from growing one of 16-32 MiB while
 * a backup streams (measured: a download's peak 201 → 188 MiB);
 * two malloc arenas let memory freed by one thread (the snapshot worker, zlib)
 * be reused by the others; eight libuv threads keep an upload's file
 * operations from queueing behind a backup's compression and reads.
 */
export function serverEnv(env = process.env) {
  return {
    NEXT_TELEMETRY_DISABLED: "1",
    NODE_OPTIONS: [env.NODE_OPTIONS, "--expose-gc", "--max-semi-space-size=4"].filter(Boolean).join(" "),
    MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? "2",
    UV_THREADPOOL_SIZE: env.UV_THREADPOOL_SIZE ?? "8",
  };
}
