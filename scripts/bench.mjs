// npm run bench: the production build, then bench/*.bench.ts (Playwright as the runner, sharing e2e/support).
import { run, bin } from "./run.mjs";

run(bin("next"), ["build"]);
run(bin("playwright"), ["test", "-c", "bench/playwright.config.ts", ...process.argv.slice(2)]);
