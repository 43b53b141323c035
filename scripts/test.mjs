// npm test: everything CI runs, in order. The production build is what the e2e tests start.
import { run, bin } from "./run.mjs";

run(process.execPath, ["scripts/ensure-tools.mjs"]);
run(bin("next"), ["build"]);
run(bin("tsc"), ["-p", "tsconfig.cli.json"]);
run(bin("vitest"), ["run"]);
run(bin("playwright"), ["test"]);
