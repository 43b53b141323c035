// npm start: build when the build is missing or older than the sources, then serve ./data (or COFFER_DATA_DIR)
// on PORT (3000) and HOST (all interfaces) through Coffer's own entry (server/main.ts).
import fs from "node:fs";
import path from "node:path";
import { spawn } from "node:child_process";
import { run, bin, serverEnv } from "./run.mjs";

function newestMtime(p) {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of fs.readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, e)));
  return newest;
}

const sources = ["app", "components", "lib", "public", "instrumentation.ts", "next.config.ts", "package.json", "postcss.config.mjs"];
const buildId = ".next/BUILD_ID";
const built = fs.existsSync(buildId) ? fs.statSync(buildId).mtimeMs : 0;
if (built < Math.max(...sources.map(newestMtime))) {
  console.log("Building Coffer (first start, or the sources changed)…");
  run(bin("next"), ["build"]);
}

// The server entry and the CLI share one small TypeScript build (npm install runs it; redo it when stale).
const entry = "dist/server/main.js";
const entryBuilt = fs.existsSync(entry) ? fs.statSync(entry).mtimeMs : 0;
if (entryBuilt < Math.max(...["server", "cli", "lib", "tsconfig.cli.json"].map(newestMtime))) run(bin("tsc"), ["-p", "tsconfig.cli.json"]);

const child = spawn(process.execPath, ["bin/coffer-server.cjs"], { stdio: "inherit", env: { ...process.env, NODE_ENV: "production", ...serverEnv() } });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
