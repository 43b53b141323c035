import crypto from "node:crypto";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, cookiesFor, uploadDocument, type Server } from "./support/server";

let server: Server;
test.beforeAll(async () => {
  server = await startServer();
  await setupInstance(server);
});
test.afterAll(async () => {
  await server?.stop();
});

test("Health shows how the instance is protected; Run restore drill proves the newest backup, and Health and /api/health say when and how fast", async ({ browser }) => {
  const cookie = await signInCookie(server, "admin", "admin-password-1");
  await uploadDocument(server, cookie, "contract.pdf", crypto.randomBytes(200_000));
  await uploadDocument(server, cookie, "notes.txt", Buffer.from("protected\n".repeat(1000)));
  const ctx = await browser.newContext();
  await ctx.addCookies(cookiesFor(server, cookie));
  const page = await ctx.newPage();

  // Before any backup: New setup turned the schedule on; nothing is proven yet, and each gap links to its fix.
  await page.goto(`${server.url}/settings/health`);
  const protection = page.getByTestId("protection");
  await expect(protection).toContainText("On (0 3 * * *, UTC)");
  await expect(protection).toContainText("Never: no restore drill has passed yet");
  await expect(protection.getByRole("link", { name: "Encrypt backups" })).toHaveAttribute("href", "/settings/backup/encryption");
  await expect(protection.getByRole("link", { name: "Add a bucket" })).toHaveAttribute("href", "/settings/backup/offsite");

  const run = await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } });
  expect(run.status).toBe(201);

  await page.reload();
  await page.getByRole("button", { name: "Run restore drill" }).click();
  await expect(page.getByRole("status").filter({ hasText: /^Restore proven: coffer_full_\S+ came back in [\d.]+ s and passed the deep check\.$/ })).toBeVisible({ timeout: 60_000 });
  await page.reload();
  await expect(page.getByTestId("drills")).toContainText("passed");
  await expect(page.getByTestId("drills")).toContainText("2 documents, 2 files");
  await expect(protection).toContainText(/Last proven restore.*coffer_full_\S+ \(local\), back in [\d.]+ s/);

  const health = await (await fetch(`${server.url}/api/health`, { headers: { cookie } })).json();
  expect(health.proof.last_proven_restore).toMatchObject({ source: "local" });
  expect(health.proof.last_proven_restore.seconds).toBeGreaterThan(0);
  expect(health.proof.last_drill.status).toBe("success");
  expect(JSON.stringify(health)).not.toContain("coffer_full_"); // /api/health names no files

  if (process.env.COFFER_SHOTS) {
    await page.screenshot({ path: `${process.env.COFFER_SHOTS}/health-desktop.png`, fullPage: true });
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
    await phone.addCookies(cookiesFor(server, cookie));
    const p2 = await phone.newPage();
    await p2.goto(`${server.url}/settings/health`);
    await p2.screenshot({ path: `${process.env.COFFER_SHOTS}/health-phone-dark.png`, fullPage: true });
    await phone.close();
  }
  await ctx.close();
});
