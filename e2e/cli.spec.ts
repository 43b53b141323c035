import path from "node:path";
import { spawnSync } from "node:child_process";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, cookiesFor } from "./support/server";

const coffer = (args: string[]) =>
  spawnSync(process.execPath, [path.resolve(__dirname, "..", "bin", "coffer.cjs"), ...args], { encoding: "utf8", env: { ...process.env, COFFER_DATA_DIR: "" } });

test("coffer restore refuses while a server holds the instance; Health shows the doctor's checks", async ({ browser }) => {
  const s = await startServer();
  await setupInstance(s);
  const backup = coffer(["--data-dir", s.dataDir, "--json", "backup"]);
  expect(backup.status, backup.stderr).toBe(0);
  const file = JSON.parse(backup.stdout).file;
  const r = coffer(["--data-dir", s.dataDir, "restore", file, "--yes"]);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/Coffer is running on .* \(pid \d+\)\. Stop it first/);
  expect(r.stderr).toContain("SERVER_RUNNING");

  const admin = await signInCookie(s, "admin", "admin-password-1");
  const ctx = await browser.newContext();
  await ctx.addCookies(cookiesFor(s, admin));
  const page = await ctx.newPage();
  await page.goto(`${s.url}/settings/health`);
  await expect(page.getByTestId("report-quick")).toContainText("database.quick_check");
  await page.getByRole("button", { name: "Run deep check" }).click();
  await expect(page.getByText("Deep check done: everything is in order.")).toBeVisible();
  await expect(page.getByTestId("report-deep")).toContainText("vault.corrupt");
  await ctx.close();

  await s.stop();
  // With the server gone, the same command restores.
  const ok = coffer(["--data-dir", s.dataDir, "restore", file, "--yes"]);
  expect(ok.status, ok.stderr).toBe(0);
});
