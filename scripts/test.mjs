// npm test: everything CI runs, in order. The production build is what the e2e tests start.
import { run, bin } from "./run.mjs";

run(process.execPath, ["scripts/ensure-tools.mjs"]);
run(bin("next"), ["build"]);
run(bin("tsc"), ["-p", "tsconfig.cli.json"]);
run(bin("vitest"), ["run"]);
run(bin("playwright"), ["test"]);
// The unit and integration suite on the other supported Node versions (COFFER_TEST_NODES="" skips it).
const others = (process.env.COFFER_TEST_NODES ?? "22 24").split(/[\s,]+/).filter(Boolean);
if (others.length) run(process.execPath, ["scripts/test-node.mjs", ...others]);
