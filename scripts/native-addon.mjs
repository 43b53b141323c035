// npm install's last step (postinstall): on Node 24.19 or later, make sure
// better-sqlite3 is compiled against Node 24.18.1's headers.
//
// Node 24.19.0 changed node::ObjectWrap, whose code is compiled into each
// addon from Node's headers: its destructor now calls
// RemoveEnvironmentCleanupHook, which aborts the whole process when V8
// collects a better-sqlite3 Statement outside a JavaScript context
// (nodejs/node#65446). Coffer's test suite aborts within a minute that way.
// better-sqlite3 13 no longer uses ObjectWrap but needs Node 22, and Coffer
// supports Node 20. The crash follows the headers, not the runtime: compiled
// against 24.18.1's headers the addon runs on every Node 24 (CI proves it on
// the newest). Measured 2026-12-06 with the addon built against each Node's own
// headers: 24.21.0 aborts, 24.22.3 (whose runtime no longer asserts there) and
// 26.12.1 pass the suite; the recompile stays for 24.19-24.21. Elsewhere this does nothing.
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";

export const SAFE_HEADERS = "24.18.1";
const ROOT = path.resolve(import.meta.dirname, "..");
const ADDON = path.join(ROOT, "node_modules", "better-sqlite3");

/** The Node version whose headers the installed addon was compiled against; null for a prebuilt binary. */
export function compiledAgainst(addonDir = ADDON) {
  try {
    // node-gyp records the headers' directory in the build's config.gypi.
    const gypi = fs.readFileSync(path.join(addonDir, "build", "config.gypi"), "utf8");
    const dir = /"nodedir":\s*"([^"]+)"/.exec(gypi)?.[1];
    const h = fs.readFileSync(path.join(dir, "include", "node", "node_version.h"), "utf8");
    const n = (name) => Number(new RegExp(`#define ${name} (\\d+)`).exec(h)[1]);
    return [n("NODE_MAJOR_VERSION"), n("NODE_MINOR_VERSION"), n("NODE_PATCH_VERSION")];
  } catch {
    return null;
  }
}

/** Whether an addon compiled against `headers` may abort on this runtime. */
export function atRisk(runtime = process.versions.node, headers = compiledAgainst()) {
  const [major, minor] = runtime.split(".").map(Number);
  if (major !== 24 || minor < 19) return false;
  return !headers || headers[0] !== 24 || headers[1] >= 19;
}

/** npm's own node-gyp (npm names it for install scripts; else next to the npm that runs us, or on the PATH). */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  ];
  for (const c of candidates) if (c && fs.existsSync(c) && !c.endsWith(".cmd")) return c;
  const r = spawnSync("npm", ["prefix", "-g"], { encoding: "utf8" });
  return path.join(r.stdout.trim(), "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js");
}

function main() {
  if (!fs.existsSync(path.join(ADDON, "package.json"))) return 0;
  const addonMajor = Number(JSON.parse(fs.readFileSync(path.join(ADDON, "package.json"), "utf8")).version.split(".")[0]);
  if (addonMajor >= 13 || !atRisk()) return 0;
  const was = compiledAgainst();
  console.log(
    `Coffer: Node ${process.versions.node}: compiling better-sqlite3 against Node ${SAFE_HEADERS}'s headers ` +
      `(${was ? `it was compiled against ${was.join(".")}'s` : "it came prebuilt"}; later 24.x headers make it abort, nodejs/node#65446).`,
  );
  // node-gyp itself, not npm rebuild: npm would pass on a nodedir from an .npmrc, and node-gyp must
  // fetch the target's headers from nodejs.org (or NODEJS_ORG_MIRROR) instead.
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^npm_config_(nodedir|target|runtime|dist_?url)$/i.test(k)) delete env[k];
  const r = spawnSync(process.execPath, [nodeGyp(), "rebuild", "--release", `--target=${SAFE_HEADERS}`], { cwd: ADDON, stdio: "inherit", env });
  const now = compiledAgainst();
  if (r.status !== 0 || !now || atRisk(process.versions.node, now)) {
    console.error(
      `Coffer: better-sqlite3 could not be compiled against Node ${SAFE_HEADERS}'s headers, and as installed it can abort on Node ${process.versions.node}.\n` +
        `Use Node 22 (LTS), or install python3, make and a C++ compiler and let node-gyp reach nodejs.org (or set NODEJS_ORG_MIRROR), then run npm ci again.`,
    );
    return 1;
  }
  console.log(`Coffer: better-sqlite3 is compiled against Node ${now.join(".")}'s headers.`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) process.exit(main());
