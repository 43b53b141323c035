import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { test, expect } from "@playwright/test";
import { startServer, SETUP_CODE, type Server } from "./support/server";

test.describe.configure({ mode: "serial" });

let server: Server;
test.beforeAll(async () => {
  server = await startServer();
});
test.afterAll(async () => {
  await server?.stop();
});

test("setup code → New setup → Documents → upload, download, sign out, sign in", async ({ page }, testInfo) => {
  expect(server.logs()).toContain(`Coffer is not set up yet. Open http://127.0.0.1:${server.port}/setup and enter the setup code ${SETUP_CODE}`);

  // Every page sends a new instance to the wizard.
  await page.goto(`${server.url}/documents`);
  await expect(page).toHaveURL(/\/setup$/);

  await page.getByLabel("Setup code").fill("WRONG-CODE-0000");
  await page.getByRole("button", { name: "Continue" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "setup code is not right" })).toBeVisible();

  await page.getByLabel("Setup code").fill(SETUP_CODE.toLowerCase());
  await page.getByRole("button", { name: "Continue" }).click();
  await expect(page.getByRole("button", { name: /New setup/ })).toBeVisible();
  await expect(page.getByRole("button", { name: /Restore from backup/ })).toBeVisible();
  await page.getByRole("button", { name: /New setup/ }).click();

  await page.getByLabel("Instance name").fill("Family papers");
  await page.getByLabel("Admin username").fill("alice");
  await page.getByLabel("Password", { exact: true }).fill("alice-password-1");
  await page.getByLabel("Password again").fill("alice-password-2");
  await page.getByRole("button", { name: "Create admin and finish" }).click();
  await expect(page.getByText("The two passwords are not the same.")).toBeVisible();
  await page.getByLabel("Password again").fill("alice-password-1");
  // Protection is on by default, in the browser's time zone.
  await expect(page.getByTestId("protect")).toContainText("Back up every day at 03:00");
  await expect(page.getByLabel(/Back up every day at 03:00/)).toBeChecked();
  // Encryption from the start: a key made now, kept by the admin (recovery kit), only its public half saved.
  await page.getByLabel(/Encrypt backups/).check();
  const identity = (await page.getByTestId("identity").textContent())!.trim();
  expect(identity).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
  const [kit] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download recovery kit" }).click()]);
  expect(fs.readFileSync(await kit.path(), "utf8")).toContain(identity);
  await page.getByRole("button", { name: "Create admin and finish" }).click();
  await expect(page.getByText("Type the last 6 characters of the key, to show you saved it.")).toBeVisible();
  await page.getByLabel("Type the last 6 characters of the key").fill(identity.slice(-6).toLowerCase());
  await page.getByRole("button", { name: "Create admin and finish" }).click();

  await expect(page).toHaveURL(/\/documents$/);
  const settings = fs.readFileSync(path.join(server.dataDir, "settings.yaml"), "utf8");
  expect(settings).toMatch(/enabled: true/);
  expect(settings).toMatch(/schedule: 0 3 \* \* \*/);
  expect(settings).toMatch(/mode: gfs/);
  expect(settings).toMatch(/mode: recipients\n\s+recipients:\n\s+- age1[0-9a-z]{58}\n/);
  expect(settings).not.toContain(identity);
  await expect(page.getByRole("heading", { name: "Documents" })).toBeVisible();
  await expect(page.getByTestId("whoami")).toContainText("alice");
  expect(fs.existsSync(path.join(server.dataDir, "setup-token"))).toBe(false);

  // Upload a file through the file input (raw body, progress bar).
  const bytes = crypto.randomBytes(3 * 1024 * 1024 + 17);
  const src = testInfo.outputPath("report 2026.pdf");
  fs.writeFileSync(src, bytes);
  await page.getByLabel("Upload files").setInputFiles(src);
  await expect(page.getByText("Uploaded report 2026.pdf.")).toBeVisible();
  await expect(page.getByRole("cell", { name: "report 2026.pdf", exact: true })).toBeVisible();

  // Download it and compare bytes.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download report 2026.pdf" }).click(),
  ]);
  expect(download.suggestedFilename()).toBe("report 2026.pdf");
  const saved = testInfo.outputPath("downloaded.pdf");
  await download.saveAs(saved);
  expect(crypto.createHash("sha256").update(fs.readFileSync(saved)).digest("hex")).toBe(
    crypto.createHash("sha256").update(bytes).digest("hex"),
  );

  // Sign out, a wrong password shows an error, the right one gets back in.
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByRole("heading", { name: "Sign in to Family papers" })).toBeVisible();
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "Wrong username or password." })).toBeVisible();
  await page.getByLabel("Password").fill("alice-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/documents$/);
  await expect(page.getByRole("cell", { name: "report 2026.pdf", exact: true })).toBeVisible();

  // The audit log saw all of it.
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("link", { name: "Audit log" }).click();
  for (const action of ["setup.complete", "auth.login_failed", "auth.login", "document.upload"]) {
    await expect(page.getByRole("cell", { name: action, exact: true }).first()).toBeVisible();
  }

  // Delete removes the row.
  await page.getByRole("link", { name: "Documents" }).click();
  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Delete report 2026.pdf" }).click();
  await expect(page.getByText("No documents yet.")).toBeVisible();
});

test("an admin adds a member, who sees only their own documents and no Settings", async ({ browser }) => {
  // Runs after the first test on the same instance (alice exists).
  const page = await browser.newPage();
  await page.goto(`${server.url}/login`);
  await page.getByLabel("Username").fill("alice");
  await page.getByLabel("Password").fill("alice-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/documents$/);
  await page.goto(`${server.url}/settings/users`);
  await page.getByLabel("Username").fill("bob");
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByText("Use at least 10 characters.")).toBeVisible();
  await page.getByLabel("Password").fill("bob-password-1");
  await page.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByText("Added bob.")).toBeVisible();
  await expect(page.getByTestId("user-bob")).toBeVisible();
  await page.close();

  const ctx = await browser.newContext();
  const bob = await ctx.newPage();
  await bob.goto(`${server.url}/login`);
  await bob.getByLabel("Username").fill("bob");
  await bob.getByLabel("Password").fill("bob-password-1");
  await bob.getByRole("button", { name: "Sign in" }).click();
  await expect(bob).toHaveURL(/\/documents$/);
  await expect(bob.getByRole("link", { name: "Settings" })).toHaveCount(0);
  const res = await bob.goto(`${server.url}/settings/users`);
  expect(res?.status()).toBe(403);
  await expect(bob.getByRole("heading", { name: "Admins only" })).toBeVisible();
  await ctx.close();
});
