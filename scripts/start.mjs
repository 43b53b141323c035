// npm start: build when the build is missing or older than the sources, then serve ./data (or COFFER_DATA_DIR).
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

const args = ["start", "-p", process.env.PORT || "3000"];
if (process.env.HOST) args.push("-H", process.env.HOST);
const child = spawn(bin("next"), args, { stdio: "inherit", env: { ...process.env, ...serverEnv() } });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
