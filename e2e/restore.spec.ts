import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, addUserViaUi, uploadDocument, cookiesFor, SETUP_CODE, type Server, openRestoreWizard } from "./support/server";
import { encryptSecret, decryptSecret } from "../lib/settings/secrets";

const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

async function downloadBytes(server: Server, cookie: string, url: string): Promise<Buffer> {
  const res = await fetch(server.url + url, { headers: { cookie } });
  expect(res.status, url).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

test("round trip on two instances: a full backup of A restored into fresh B through the wizard", async ({ page, browser }, testInfo) => {
  test.setTimeout(180_000);
  // Instance A: two users, documents, an encrypted secret in settings.
  const a = await startServer();
  await setupInstance(a);
  const aAdmin = await signInCookie(a, "admin", "admin-password-1");
  await addUserViaUi(browser, a, aAdmin, "mia", "member-password-1");
  const mia = await signInCookie(a, "mia", "member-password-1");
  const docs = {
    "contract.pdf": crypto.randomBytes(2 * 1024 * 1024),
    "notes.txt": Buffer.from("Meeting notes\n".repeat(10000)),
  };
  await uploadDocument(a, aAdmin, "contract.pdf", docs["contract.pdf"]);
  await uploadDocument(a, mia, "notes.txt", docs["notes.txt"]);
  const configKey = fs.readFileSync(path.join(a.dataDir, "keys", "config.key"));
  const settingsFile = path.join(a.dataDir, "settings.yaml");
  fs.writeFileSync(settingsFile, fs.readFileSync(settingsFile, "utf8").replace("webhook_url: null", `webhook_url: ${encryptSecret(configKey, "https://hooks.example/a-secret")}`));
  const archive = await downloadBytes(a, aAdmin, "/api/backup/download?scope=full");
  const file = testInfo.outputPath("coffer_full_a.tar.gz");
  fs.writeFileSync(file, archive);
  await a.stop();

  // Instance B, fresh: the wizard's Restore from backup.
  const b = await startServer();
  await openRestoreWizard(page, b);

  // A broken file first: the error shows next to the file input, nothing changes.
  const broken = testInfo.outputPath("broken.tar.gz");
  fs.writeFileSync(broken, archive.subarray(0, Math.floor(archive.length / 2)));
  await page.getByLabel("Backup file").setInputFiles(broken);
  await expect(page.getByRole("alert").filter({ hasText: "truncated" })).toBeVisible();
  expect(fs.readdirSync(path.join(b.dataDir, ".staging"))).toEqual([]);

  await page.getByLabel("Backup file").setInputFiles(file);
  const preview = page.getByTestId("restore-preview");
  await expect(preview).toBeVisible();
  await expect(preview).toContainText("Accounts");
  await expect(preview).toContainText("2 (");
  await page.getByRole("button", { name: "Restore this backup" }).click();
  await expect(page).toHaveURL(/\/login\?restored=/);
  await expect(page.getByText(/Restored from the backup of .*Sign in with an account from that instance\./)).toBeVisible();

  // A's accounts sign in with their old passwords; documents are byte-identical; the secret decrypts.
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("admin-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/documents$/);
  await expect(page.getByRole("cell", { name: "contract.pdf", exact: true })).toBeVisible();
  const bAdmin = await signInCookie(b, "admin", "admin-password-1");
  const bMia = await signInCookie(b, "mia", "member-password-1");
  const list = (await (await fetch(`${b.url}/api/documents`, { headers: { cookie: bAdmin } })).json()).documents as { id: number; name: keyof typeof docs }[];
  expect(list.map((d) => d.name).sort()).toEqual(["contract.pdf", "notes.txt"]);
  for (const d of list) expect(sha(await downloadBytes(b, bAdmin, `/api/documents/${d.id}`))).toBe(sha(docs[d.name]));
  const miaList = (await (await fetch(`${b.url}/api/documents`, { headers: { cookie: bMia } })).json()).documents;
  expect(miaList.map((d: { name: string }) => d.name)).toEqual(["notes.txt"]);
  const restoredSettings = fs.readFileSync(path.join(b.dataDir, "settings.yaml"), "utf8");
  const enc = /webhook_url: (enc:v1:\S+)/.exec(restoredSettings)![1];
  expect(decryptSecret(fs.readFileSync(path.join(b.dataDir, "keys", "config.key")), enc)).toBe("https://hooks.example/a-secret");

  // Setup is over: every setup endpoint answers 403, the code file is gone.
  expect(fs.existsSync(path.join(b.dataDir, "setup-token"))).toBe(false);
  for (const p of ["/api/setup", "/api/setup/verify", "/api/setup/restore"]) {
    const res = await fetch(b.url + p, { method: "POST", headers: { "x-setup-token": SETUP_CODE, "content-type": "application/json" }, body: JSON.stringify({ token: SETUP_CODE }) });
    expect(res.status, p).toBe(403);
  }
  await b.stop();
});

test("restore on a running instance, then undo it with the prerestore archive", async ({ browser }) => {
  test.setTimeout(180_000);
  const s = await startServer();
  await setupInstance(s);
  const admin = await signInCookie(s, "admin", "admin-password-1");
  await uploadDocument(s, admin, "old.txt", Buffer.from("from before"));
  const run = await fetch(`${s.url}/api/settings/backup/run`, { method: "POST", headers: { cookie: admin } });
  expect(run.status).toBe(201);
  const { name: snapshot } = await run.json();
  const list = (await (await fetch(`${s.url}/api/documents`, { headers: { cookie: admin } })).json()).documents;
  await fetch(`${s.url}/api/documents/${list[0].id}`, { method: "DELETE", headers: { cookie: admin } });
  await uploadDocument(s, admin, "new.txt", Buffer.from("made after the backup"));

  const ctx = await browser.newContext();
  await ctx.addCookies(cookiesFor(s, admin));
  const page = await ctx.newPage();
  await page.goto(`${s.url}/settings/backup`);
  await page.getByRole("button", { name: `Restore ${snapshot}` }).click();
  await expect(page.getByTestId("restore-preview")).toBeVisible();
  await page.getByLabel("Your password").fill("wrong-password-0");
  await page.getByRole("button", { name: "Restore this backup" }).click();
  await expect(page.getByText("That password is not right.")).toBeVisible();
  await page.getByLabel("Your password").fill("admin-password-1");
  await page.getByRole("button", { name: "Restore this backup" }).click();
  await expect(page).toHaveURL(/\/login\?restored=/);

  // The old session ended; signing in shows the restored documents.
  expect((await fetch(`${s.url}/api/documents`, { headers: { cookie: admin } })).status).toBe(401);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("admin-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("cell", { name: "old.txt", exact: true })).toBeVisible();
  await expect(page.getByRole("cell", { name: "new.txt", exact: true })).toHaveCount(0);

  // The prerestore archive is listed; restoring it undoes the restore.
  await page.goto(`${s.url}/settings/backup`);
  const pre = page.getByTestId("backup-row").filter({ hasText: "prerestore" });
  await expect(pre).toHaveCount(1);
  await pre.getByRole("button", { name: /^Restore / }).click();
  await page.getByLabel("Your password").fill("admin-password-1");
  await page.getByRole("button", { name: "Restore this backup" }).click();
  await expect(page).toHaveURL(/\/login\?restored=/);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("admin-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("cell", { name: "new.txt", exact: true })).toBeVisible();
  await expect(page.getByRole("cell", { name: "old.txt", exact: true })).toHaveCount(0);
  await page.goto(`${s.url}/settings/audit?action=restore.`);
  await expect(page.getByRole("cell", { name: "restore.apply", exact: true }).first()).toBeVisible();
  await ctx.close();
  await s.stop();
});

test("restore guards: setup code or admin with password; members and strangers get nothing", async ({ browser }) => {
  const s = await startServer();
  // While pending: no code, no staging.
  const noCode = await fetch(`${s.url}/api/setup/restore`, { method: "POST", body: "x" });
  expect(noCode.status).toBe(401);
  await setupInstance(s);
  const admin = await signInCookie(s, "admin", "admin-password-1");
  await addUserViaUi(browser, s, admin, "mia", "member-password-1");
  const member = await signInCookie(s, "mia", "member-password-1");
  const id = "0".repeat(32);
  const routes: [string, string][] = [
    ["POST", "/api/settings/backup/restore"],
    ["POST", "/api/settings/backup/files/coffer_full_20260101_000000Z.tar.gz/restore"],
    ["POST", `/api/restore/${id}/apply`],
    ["DELETE", `/api/restore/${id}`],
  ];
  for (const [method, p] of routes) {
    expect((await fetch(s.url + p, { method, body: method === "POST" ? "{}" : undefined })).status, `anon ${p}`).toBe(401);
    expect((await fetch(s.url + p, { method, headers: { cookie: member }, body: method === "POST" ? "{}" : undefined })).status, `member ${p}`).toBe(403);
  }
  const garbage = await fetch(`${s.url}/api/settings/backup/restore`, { method: "POST", headers: { cookie: admin }, body: crypto.randomBytes(1000) });
  expect(garbage.status).toBe(400);
  expect((await garbage.json()).error.code).toBe("ARCHIVE_NOT_GZIP");
  const noPassword = await fetch(`${s.url}/api/restore/${id}/apply`, { method: "POST", headers: { cookie: admin, "content-type": "application/json" }, body: "{}" });
  expect(noPassword.status).toBe(400);
  expect((await fetch(`${s.url}/api/restore/${id}/apply`, { method: "POST", headers: { cookie: admin }, body: JSON.stringify({ password: "admin-password-1" }) })).status).toBe(404);
  await s.stop();
});
