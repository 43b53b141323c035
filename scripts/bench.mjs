// npm run bench: the production build, then bench/*.bench.ts (Playwright as the runner, sharing e2e/support).
import { run, bin, serverEnv } from "./run.mjs";

run(bin("next"), ["build"]);
// Benches also run Coffer's code in their own process (to watch its event loop
// and memory directly): with the server's V8 and libuv settings, so that what
// they measure is what the server does.
run(bin("playwright"), ["test", "-c", "bench/playwright.config.ts", ...process.argv.slice(2)], serverEnv());
