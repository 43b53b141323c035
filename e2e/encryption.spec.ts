import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, uploadDocument, cookiesFor, openRestoreWizard, type Server } from "./support/server";

const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

/** Every file Coffer wrote in a data dir, and its server log, searched for an age identity. */
function expectNoIdentityAnywhere(server: Server) {
  for (const f of fs.readdirSync(server.dataDir, { recursive: true }).map(String)) {
    const p = path.join(server.dataDir, f);
    if (fs.statSync(p).isFile()) expect(fs.readFileSync(p).includes("AGE-SECRET-KEY-"), f).toBe(false);
  }
  expect(server.logs()).not.toContain("AGE-SECRET-KEY-");
}

test("encrypt backups from Settings, then restore a fresh server from the encrypted backup in the wizard with the recovery kit", async ({ browser, page }, testInfo) => {
  test.setTimeout(180_000);
  const a = await startServer();
  await setupInstance(a);
  const cookie = await signInCookie(a, "admin", "admin-password-1");
  const doc = crypto.randomBytes(200_000);
  await uploadDocument(a, cookie, "passport.pdf", doc);

  const ctx = await browser.newContext({ acceptDownloads: true });
  await ctx.addCookies(cookiesFor(a, cookie));
  const admin = await ctx.newPage();
  await admin.goto(`${a.url}/settings/backup/encryption`);
  const card = admin.getByTestId("encryption");
  await expect(card).toContainText("Backups are not encrypted");
  await card.getByRole("button", { name: "Generate a key and encrypt backups" }).click();
  const identity = (await card.getByTestId("identity").textContent())!.trim();
  expect(identity).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
  const [download] = await Promise.all([admin.waitForEvent("download"), card.getByRole("button", { name: "Download recovery kit" }).click()]);
  const kit = testInfo.outputPath("coffer-recovery-kit.txt");
  await download.saveAs(kit);
  expect(fs.readFileSync(kit, "utf8")).toContain(identity);
  // Not before the last characters are typed back.
  const confirm = card.getByRole("button", { name: "Encrypt backups for this key" });
  await expect(confirm).toBeDisabled();
  await card.getByLabel("Type the last 6 characters of the key").fill(identity.slice(-6).toLowerCase());
  await confirm.click();
  await expect(card.getByTestId("encryption-status")).toContainText("encrypted for");
  await expect(card.getByTestId("identity")).toHaveCount(0); // shown once

  await admin.getByRole("navigation", { name: "Backup" }).getByRole("link", { name: "Backups" }).click();
  await admin.getByRole("button", { name: "Back up now" }).click();
  const row = admin.getByTestId("backup-row").first();
  await expect(row).toContainText(".tar.gz.age");
  await expect(row.getByTestId("encrypted-for")).toContainText("encrypted for age1");
  const name = (await row.locator(".font-mono").first().textContent())!.trim();
  const archive = testInfo.outputPath(name);
  fs.writeFileSync(archive, Buffer.from(await (await fetch(`${a.url}/api/settings/backup/files/${name}`, { headers: { cookie } })).arrayBuffer()));
  // The standard tool opens it with the recovery kit as it is.
  const listing = execFileSync("bash", ["-c", `age -d -i '${kit}' '${archive}' | tar tz`]).toString();
  expect(listing).toContain("coffer.db");
  // The key travels as a small JSON body: a large one (chunked, no length declared) is refused after at most the cap.
  const huge = new ReadableStream({
    start(c) {
      for (let i = 0; i < 64; i++) c.enqueue(new Uint8Array(64 * 1024).fill(32));
      c.close();
    },
  });
  const big = await fetch(`${a.url}/api/settings/backup/files/${name}/restore`, { method: "POST", headers: { cookie, "content-type": "application/json" }, body: huge, duplex: "half" } as RequestInit);
  expect(big.status).toBe(413);
  expect(fs.readdirSync(path.join(a.dataDir, ".staging"))).toEqual([]);
  const audit = await (await fetch(`${a.url}/settings/audit`, { headers: { cookie } })).text();
  expect(audit).toContain("settings.encryption");
  expectNoIdentityAnywhere(a);
  await ctx.close();
  await a.stop();

  // A fresh server: Restore from backup, the .age file, then the key.
  const b = await startServer();
  await openRestoreWizard(page, b);
  await page.getByLabel("Backup file").setInputFiles(archive);
  const keyBox = page.getByTestId("key-input");
  await expect(keyBox).toContainText("This backup is encrypted");
  // A wrong key first: said where it happens, nothing staged.
  await keyBox.getByLabel("or paste the key").fill("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ");
  await page.getByRole("button", { name: /Upload and check/ }).click();
  await expect(page.getByRole("alert").first()).toBeVisible();
  expect(fs.readdirSync(path.join(b.dataDir, ".staging"))).toEqual([]);
  await keyBox.getByLabel("or paste the key").fill("");
  await keyBox.getByLabel("Recovery kit or key file").setInputFiles(kit);
  await expect(keyBox).toContainText("Key read from coffer-recovery-kit.txt");
  await page.getByRole("button", { name: /Upload and check/ }).click();
  await expect(page.getByTestId("restore-preview")).toBeVisible();
  await page.getByRole("button", { name: "Restore this backup" }).click();
  await expect(page).toHaveURL(/\/login\?restored=/);
  const bCookie = await signInCookie(b, "admin", "admin-password-1");
  const list = (await (await fetch(`${b.url}/api/documents`, { headers: { cookie: bCookie } })).json()).documents as { id: number; name: string }[];
  expect(list.map((d) => d.name)).toEqual(["passport.pdf"]);
  expect(sha(Buffer.from(await (await fetch(`${b.url}/api/documents/${list[0].id}`, { headers: { cookie: bCookie } })).arrayBuffer()))).toBe(sha(doc));
  expectNoIdentityAnywhere(b);
  await b.stop();
});
