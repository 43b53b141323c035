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
