// npm test: everything CI runs, in order, then a summary that names each Node line's result.
// The production build is what the e2e tests start.
//
// The unit suite runs on this machine's Node, then on the releases pinned in
// scripts/node-pins.json (COFFER_TEST_NODES="" skips them, or lists other versions), then on
// any newer release of a pinned major: that last step is reported, and fails nothing, so a new
// Node release is tried the day it appears without turning main red (COFFER_TEST_NEWEST=0 skips it).
import { spawnSync } from "node:child_process";
import { bin } from "./run.mjs";
import { readPins, newestReleases, isNewer } from "./node-pins.mjs";

const results = [];

function step(label, cmd, args, { gate = true, counts = true } = {}) {
  const started = Date.now();
  const r = spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" } });
  const ok = r.status === 0;
  results.push({ label, ok, counts, code: r.status ?? r.signal, seconds: Math.round((Date.now() - started) / 1000) });
  if (!ok) console.error(`\n${label}: ${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}).`);
  // A build that failed leaves nothing to test.
  if (!ok && gate) finish();
  return ok;
}

function finish() {
  console.log("\nnpm test summary");
  for (const r of results) {
    const verdict = r.ok ? "passed" : r.counts ? `FAILED (${r.code})` : `FAILED (${r.code}), reported only: the pinned releases decide the run`;
    console.log(`  ${r.label.padEnd(48)} ${r.note ?? verdict}  ${r.seconds} s`);
  }
  const failed = results.filter((r) => !r.ok && r.counts);
  console.log(failed.length ? `\n${failed.length} step(s) failed: ${failed.map((r) => r.label).join("; ")}` : "\nEvery step that counts passed.");
  process.exit(failed.length ? 1 : 0);
}

step("tools (chromium, age)", process.execPath, ["scripts/ensure-tools.mjs"]);
step("next build", bin("next"), ["build"]);
step("CLI build", bin("tsc"), ["-p", "tsconfig.cli.json"]);
const here = `Node ${process.versions.node} (this machine)`;
step(`Vitest on ${here}`, bin("vitest"), ["run"], { gate: false });
step(`Playwright on ${here}`, bin("playwright"), ["test"], { gate: false });

const pins = readPins();
const others = (process.env.COFFER_TEST_NODES ?? Object.values(pins).join(" ")).split(/[\s,]+/).filter(Boolean);
for (const v of others) step(`Vitest on Node ${v} (pinned)`, process.execPath, ["scripts/test-node.mjs", v], { gate: false });

if (process.env.COFFER_TEST_NEWEST !== "0" && process.env.COFFER_TEST_NODES === undefined) {
  const newest = newestReleases(Object.keys(pins));
  for (const [major, pin] of Object.entries(pins)) {
    const n = newest[major];
    if (n === null) results.push({ label: `Node ${major}: newest release`, ok: true, counts: false, code: 0, seconds: 0, note: "registry did not answer" });
    else if (isNewer(n, pin)) {
      console.log(`\nNode ${n} is out (pinned: ${pin}): trying the suite on it; its result is reported and fails nothing.`);
      step(`Vitest on Node ${n} (newest, not pinned yet)`, process.execPath, ["scripts/test-node.mjs", n], { gate: false, counts: false });
    }
  }
}
finish();
