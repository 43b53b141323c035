import fs from "node:fs";
import path from "node:path";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, cookiesFor } from "./support/server";

test("an admin sets a one-minute cron with count retention 2; scheduled runs appear and only two archives remain", async ({ browser }) => {
  test.setTimeout(300_000);
  const s = await startServer({ env: { COFFER_SCHEDULER_TICK_MS: "2000" } });
  await setupInstance(s);
  const admin = await signInCookie(s, "admin", "admin-password-1");
  const ctx = await browser.newContext();
  await ctx.addCookies(cookiesFor(s, admin));
  const page = await ctx.newPage();
  await page.goto(`${s.url}/settings/backup/history`);
  // New setup turned protection on: daily at 03:00 (UTC for an unattended setup).
  await expect(page.getByTestId("next-run")).toHaveText(/^Next scheduled run: \d{4}-\d{2}-\d{2} 03:00:00 UTC\.$/);
  await page.goto(`${s.url}/settings/backup/schedule`);

  // Invalid input shows a field error and changes nothing.
  const settingsFile = path.join(s.dataDir, "settings.yaml");
  const before = fs.readFileSync(settingsFile, "utf8");
  await page.getByLabel("When").selectOption("cron");
  await page.getByLabel("Cron expression").fill("61 * * * *");
  await expect(page.getByText(/Next runs: —/)).toBeVisible();
  await page.getByRole("button", { name: "Save schedule" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "cron expression is not valid" })).toBeVisible();
  expect(fs.readFileSync(settingsFile, "utf8")).toBe(before);

  await page.getByLabel("Cron expression").fill("* * * * *");
  await page.getByLabel("Time zone").fill("UTC");
  await expect(page.getByTestId("next-runs")).toContainText("UTC ·");
  await page.getByLabel("Enabled").check();
  await page.getByRole("button", { name: "Save schedule" }).click();
  await expect(page.getByText("Saved. The schedule is in effect now.")).toBeVisible();
  // Retention is its own form: saving it leaves the schedule just saved as it is.
  await page.getByLabel("Retention").selectOption("count");
  await page.getByLabel("Backups to keep").fill("2");
  await page.getByRole("button", { name: "Save retention" }).click();
  await expect(page.getByText("Saved. Retention applies after the next verified backup.")).toBeVisible();
  const saved = fs.readFileSync(settingsFile, "utf8");
  expect(saved).toContain('schedule: "* * * * *"');
  expect(saved).toContain("count: 2");
  expect(saved).toContain("directory: data/backups");

  // Within a few minutes: three scheduled runs, and retention has left two archives.
  await expect
    .poll(
      async () => {
        await page.goto(`${s.url}/settings/backup/history`);
        return page.getByTestId("run-row").filter({ hasText: "schedule" }).filter({ hasText: "Succeeded" }).count();
      },
      { timeout: 240_000, intervals: [5_000] },
    )
    .toBeGreaterThanOrEqual(3);
  await expect(page.getByTestId("next-run")).toContainText("Next scheduled run:");
  await page.goto(`${s.url}/settings/backup`);
  await expect(page.getByTestId("backup-row")).toHaveCount(2);
  expect(fs.readdirSync(path.join(s.dataDir, "backups")).filter((n) => n.startsWith("coffer_"))).toHaveLength(2);
  const health = await (await fetch(`${s.url}/api/health`, { headers: { cookie: admin } })).json();
  expect(health.backup).toMatchObject({ scheduled: true, last_status: "success", stale: false });
  expect(Date.parse(health.backup.next_run_at)).toBeGreaterThan(Date.now() - 5_000);
  const audit = await (await fetch(`${s.url}/settings/audit?action=backup.`, { headers: { cookie: admin } })).text();
  expect(audit).toContain("backup.prune");
  await ctx.close();
  await s.stop();
});
