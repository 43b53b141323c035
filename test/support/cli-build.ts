// Vitest global setup: the CLI tests run the real command (bin/coffer.cjs on dist/), so dist/
// must be compiled from the current sources. It is compiled here, once per run, before any test
// file starts, unless it is already newer than every source it could come from (npm test's CLI
// build, or npm ci's prepare, has just made it).
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";

const ROOT = path.resolve(__dirname, "..", "..");
const DIST = path.join(ROOT, "dist");
/** The folders tsconfig.cli.json compiles, and the lib/ they import. */
const SOURCE_DIRS = ["cli", "server", "lib"];

function filesUnder(dir: string, keep: (file: string) => boolean): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => path.join(dir, f))
    .filter((f) => keep(f) && fs.statSync(f).isFile());
}

const mtime = (file: string) => fs.statSync(file).mtimeMs;

/**
 * Whether dist/ holds the CLI compiled from the sources as they are: every
 * output whose source still exists is newer than every source of the CLI
 * (any .ts under cli/, server/, lib/, and the source of each output wherever
 * it lives), than tsconfig.cli.json and than the installed compiler. A source
 * file the CLI does not use yet only counts once an importer changes, and an
 * importer that changed is newer than its output.
 */
function distIsCurrent(): boolean {
  if (!fs.existsSync(path.join(DIST, "cli", "coffer.js"))) return false;
  const outputs = filesUnder(DIST, (f) => f.endsWith(".js"))
    .map((out) => ({ out, source: path.join(ROOT, path.relative(DIST, out)).replace(/\.js$/, ".ts") }))
    .filter(({ source }) => fs.existsSync(source));
  const sources = new Set([...SOURCE_DIRS.flatMap((d) => filesUnder(path.join(ROOT, d), (f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))), ...outputs.map((o) => o.source)]);
  const inputs = [...sources, path.join(ROOT, "tsconfig.cli.json"), path.join(ROOT, "node_modules", "typescript", "package.json")];
  const oldestOutput = Math.min(...outputs.map((o) => mtime(o.out)));
  const newestInput = Math.max(...inputs.map(mtime));
  return newestInput < oldestOutput;
}

export default function setup(): void {
  if (distIsCurrent()) return;
  try {
    execFileSync(process.execPath, [path.join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", path.join(ROOT, "tsconfig.cli.json")], { cwd: ROOT, encoding: "utf8" });
  } catch (err) {
    // tsc writes its output even when the check fails: leave none behind that a later run would take as current.
    fs.rmSync(DIST, { recursive: true, force: true });
    const { stdout = "", stderr = "" } = err as { stdout?: string; stderr?: string };
    throw new Error(`The CLI build (tsc -p tsconfig.cli.json) failed, so the CLI tests cannot run:\n${stdout}${stderr}`);
  }
}
