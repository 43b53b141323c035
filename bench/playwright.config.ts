import { defineConfig } from "@playwright/test";

// Benchmarks are Playwright "tests" so they share e2e/support (server start-up, sign-in); not part of npm test.
export default defineConfig({
  testDir: ".",
  testMatch: /.*\.bench\.ts$/,
  // backup.bench.ts makes the dataset and the archive restore.bench.ts restores.
  fullyParallel: false,
  timeout: 60 * 60 * 1000,
  workers: 1,
  reporter: [["list"]],
  globalSetup: "./global-setup.ts",
});
