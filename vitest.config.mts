import { defineConfig } from "vitest/config";
import path from "node:path";

export default defineConfig({
  resolve: {
    alias: {
      "@": path.resolve(import.meta.dirname),
      // lib/ is marked server-only for Next; under Vitest it is plain Node.
      "server-only": path.resolve(import.meta.dirname, "test/support/empty.ts"),
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // The CLI tests run the compiled command: dist/ is built once, before any file starts.
    globalSetup: ["test/support/cli-build.ts"],
    // A busy lock answers after 1 s instead of 5: tests that meet one stay fast.
    env: { COFFER_LOCK_WAIT_MS: "1000" },
  },
});
