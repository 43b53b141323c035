// node scripts/runtime-tree.mjs DEST: copy only the files Coffer needs at run time into DEST.
//
// The container image's runtime stage is DEST, not the whole node_modules
// (which holds the compilers, the test tools and both libc builds of Next's
// SWC binary). What runs is server/main.ts and the CLI (compiled to dist/),
// the production build in .next, and what those load. Next's own build
// writes a trace of what its server and each route need (*.nft.json); the
// same tracer (@vercel/nft, which Next ships) follows our entries. Next's
// "standalone" output does the same for its own server.js, but it cannot
// trace a custom server (Next's docs), and Turbopack's standalone copy loses
// the hashed better-sqlite3 link its chunks load (.next/node_modules/…).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const ROOT = path.resolve(import.meta.dirname, "..");
const dest = process.argv[2];
if (!dest) {
  console.error("Usage: node scripts/runtime-tree.mjs DEST");
  process.exit(2);
}
const require = createRequire(path.join(ROOT, "package.json"));
const { nodeFileTrace } = require("next/dist/compiled/@vercel/nft");

// Never at run time, as in Next's own server trace: dev-only bundles, type
// declarations, source maps, the compilers.
const IGNORE = [
  /\/next\/dist\/compiled\/webpack\//,
  /\/node_modules\/webpack5\//,
  /\/next\/dist\/server\/lib\/route-resolver/,
  /\/next\/dist\/lib\/upgrade\//,
  /\/next\/dist\/compiled\/next-server\/.*\.dev\.js$/,
  /\/next\/dist\/pages\//,
  /\/node_modules\/react(-dom)?\/.*\.development\.js$/,
  /\/node_modules\/@next\/swc-/,
  /\/node_modules\/typescript\//,
  // Image optimisation (sharp and libvips, 20 MB): Coffer shows no optimised images (next.config.ts).
  /\/node_modules\/sharp\//,
  /\/node_modules\/@img\//,
  /\.d\.ts$/,
  /\.map$/,
];
const files = new Set(["package.json", "next.config.ts"]);
const rel = (p) => path.relative(ROOT, p).split(path.sep).join("/");

function walk(dir, visit) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, visit);
    else visit(p, e);
  }
}

// The build output, except the build cache and the tracer's own notes; every
// trace Next wrote for its server and routes.
const NEXT = path.join(ROOT, ".next");
walk(NEXT, (p) => {
  const r = rel(p);
  if (IGNORE.some((re) => re.test("/" + r))) return;
  if (r.startsWith(".next/cache/") || r === ".next/trace" || r.startsWith(".next/diagnostics/")) return;
  if (r.endsWith(".nft.json")) {
    for (const f of JSON.parse(fs.readFileSync(p, "utf8")).files) {
      const r = rel(path.resolve(path.dirname(p), f));
      // Turbopack's traces also name the TypeScript sources the chunks were built from.
      if (!r.startsWith("node_modules/") && !r.startsWith(".next/") && r.endsWith(".ts")) continue;
      files.add(r);
    }
    return;
  }
  files.add(r);
});
walk(path.join(ROOT, "public"), (p) => files.add(rel(p)));
walk(path.join(ROOT, "bin"), (p) => files.add(rel(p)));

// Our entries: the HTTP entry (which loads Next through next/dist/server/next,
// not traced by Next outside standalone) and the CLI.
const entries = [path.join(ROOT, "dist/server/main.js"), path.join(ROOT, "dist/cli/coffer.js"), ...fs.readdirSync(path.join(ROOT, "bin")).map((f) => path.join(ROOT, "bin", f))];
const traced = await nodeFileTrace(entries, {
  base: ROOT,
  processCwd: ROOT,
  mixedModules: true,
  ignore: (p) => IGNORE.some((re) => re.test("/" + p)),
});
for (const f of traced.fileList) files.add(f);
for (const r of files) if (IGNORE.some((re) => re.test("/" + r))) files.delete(r);
// Loaded by name from worker threads (eval'd source the tracer cannot read).
walk(path.join(ROOT, "node_modules/better-sqlite3/lib"), (p) => files.add(rel(p)));
files.add("node_modules/better-sqlite3/package.json");
files.add("node_modules/better-sqlite3/build/Release/better_sqlite3.node");
// Litestream (continuous protection), spawned by path (lib/continuous/litestream.ts), when the optional package installed.
for (const f of ["package.json", "litestream"]) {
  const r = `node_modules/@flydotio/litestream-linux-x64/${f}`;
  if (fs.existsSync(path.join(ROOT, r))) files.add(r);
}

// A file named through a symlinked directory is copied at its real place; the link is copied as a link.
const real = new Set();
for (const r of files) {
  const dir = path.join(ROOT, path.dirname(r));
  let resolved = dir;
  try {
    resolved = fs.realpathSync(dir);
  } catch {
    continue;
  }
  real.add(resolved === dir ? r : rel(path.join(resolved, path.basename(r))));
}

let bytes = 0;
let count = 0;
for (const r of [...real].sort()) {
  const from = path.join(ROOT, r);
  let st;
  try {
    st = fs.lstatSync(from);
  } catch {
    continue; // a trace may name a file a build step removed since
  }
  if (st.isDirectory()) continue;
  const to = path.join(dest, r);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(from), to);
  } else {
    fs.copyFileSync(from, to);
    fs.chmodSync(to, st.mode & 0o755);
    bytes += st.size;
  }
  count++;
}
console.log(`runtime tree: ${count} files, ${(bytes / 1048576).toFixed(1)} MiB in ${dest}`);
