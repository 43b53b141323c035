import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, uploadDocument, signInViaUi, openRestoreWizard, SETUP_CODE, type Server } from "./support/server";
import { startS3 } from "./support/s3";

const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");

async function documents(server: Server, cookie: string) {
  const res = await fetch(`${server.url}/api/documents`, { headers: { cookie } });
  return (await res.json()).documents as { id: number; name: string }[];
}

test("offsite: configure a bucket in Settings, back up, and bring a fresh server back from the bucket in the wizard", async ({ page }) => {
  test.setTimeout(180_000);
  const s3 = await startS3();
  const servers: Server[] = [];
  try {
    const a = await startServer();
    servers.push(a);
    await setupInstance(a);
    const cookie = await signInCookie(a, "admin", "admin-password-1");
    const docs: Record<string, Buffer> = { "deed.pdf": crypto.randomBytes(600_000), "notes.txt": Buffer.from("Offsite notes\n".repeat(4000)) };
    for (const [name, body] of Object.entries(docs)) await uploadDocument(a, cookie, name, body);

    await signInViaUi(page, a, "admin", "admin-password-1");
    await page.goto(`${a.url}/settings/backup/offsite`);
    await page.getByLabel("Endpoint", { exact: true }).fill(s3.endpoint);
    await page.getByLabel("Bucket", { exact: true }).fill("no-such-bucket");
    await page.getByLabel("Folder in the bucket (prefix)").fill("home");
    await page.getByLabel("Access key ID").fill("S3RVER");
    await page.getByLabel("Secret access key").fill("S3RVER");
    // A wrong bucket: Test connection says which part is wrong, where the form is.
    await page.getByRole("button", { name: "Test connection" }).click();
    await expect(page.getByRole("alert").filter({ hasText: "The bucket no-such-bucket does not exist" })).toBeVisible();
    // What was typed stays after a test: only the bucket needs correcting.
    await expect(page.getByLabel("Endpoint", { exact: true })).toHaveValue(s3.endpoint);
    await page.getByLabel("Bucket", { exact: true }).fill(s3.bucket);
    await page.getByRole("button", { name: "Test connection" }).click();
    await expect(page.getByRole("status").filter({ hasText: "Connected:" })).toBeVisible();
    await page.getByLabel("Send every backup offsite").check();
    await page.getByRole("button", { name: "Save offsite settings" }).click();
    await expect(page.getByRole("status").filter({ hasText: "Every backup now also goes to this bucket" })).toBeVisible();

    await page.goto(`${a.url}/settings/backup`);
    await page.getByRole("button", { name: "Back up now", exact: true }).click();
    // Continuous protection (on since New setup) follows the bucket too and may have sent the two files already.
    await expect(page.getByText(/Offsite: [0-2] new document file\(s\)/)).toBeVisible({ timeout: 60_000 });
    await page.reload();
    await expect(page.getByTestId("offsite-row")).toHaveCount(1);
    await page.goto(`${a.url}/settings/backup/offsite`);
    await expect(page.getByTestId("offsite-last")).toContainText("succeeded");
    await page.goto(`${a.url}/settings/backup/history`);
    await expect(page.getByTestId("run-row").first()).toContainText("offsite copy");
    await a.stop();

    // A new server, nothing on it: the wizard restores straight from the bucket.
    const b = await startServer();
    servers.push(b);
    await openRestoreWizard(page, b);
    await page.getByRole("tab", { name: "From S3-compatible storage" }).click();
    await page.getByLabel("Endpoint", { exact: true }).fill(s3.endpoint);
    await page.getByLabel("Bucket", { exact: true }).fill(s3.bucket);
    await page.getByLabel("Folder in the bucket (prefix)").fill("home");
    await page.getByLabel("Access key ID").fill("S3RVER");
    await page.getByLabel("Secret access key").fill("S3RVER");
    await page.getByRole("button", { name: "Show backups in this bucket" }).click();
    await expect(page.getByTestId("offsite-snapshot")).toHaveCount(1);
    await expect(page.getByTestId("offsite-snapshot")).toContainText("2 documents");
    await page.getByRole("button", { name: "Restore this one" }).click();
    const preview = page.getByTestId("restore-preview");
    await expect(preview).toBeVisible({ timeout: 60_000 });
    await expect(preview).toContainText("Document files");
    await page.getByRole("button", { name: "Restore this backup" }).click();
    await expect(page).toHaveURL(/\/login\?restored=/);

    const bCookie = await signInCookie(b, "admin", "admin-password-1");
    const list = await documents(b, bCookie);
    expect(list.map((d) => d.name).sort()).toEqual(["deed.pdf", "notes.txt"]);
    for (const d of list) {
      const res = await fetch(`${b.url}/api/documents/${d.id}`, { headers: { cookie: bCookie } });
      expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(docs[d.name]));
    }

    // The new server is another installation: its first offsite copy is refused until the admin adopts the repository.
    await signInViaUi(page, b, "admin", "admin-password-1");
    await page.goto(`${b.url}/settings/backup`);
    await page.getByRole("button", { name: "Back up now", exact: true }).click();
    await expect(page.getByText(/The offsite copy failed: .*belongs to another Coffer instance/)).toBeVisible({ timeout: 60_000 });
    await page.goto(`${b.url}/settings/backup/offsite`);
    await page.getByRole("button", { name: "Adopt the repository" }).click();
    await expect(page.getByText("This instance now owns the repository.")).toBeVisible();
    await page.goto(`${b.url}/settings/backup`);
    await page.getByRole("button", { name: "Back up now", exact: true }).click();
    await expect(page.getByText(/Offsite: 0 new document file\(s\)/)).toBeVisible({ timeout: 60_000 });
  } finally {
    for (const s of servers) await s.stop().catch(() => {});
    await s3.close();
  }
});

test("New setup with a bucket: a missing bucket is named before anything is set up; a working one is saved, and Back up now sends the first snapshot", async ({ page }) => {
  test.setTimeout(120_000);
  const s3 = await startS3();
  const server = await startServer();
  try {
    await page.goto(`${server.url}/setup`);
    await page.getByLabel("Setup code").fill(SETUP_CODE);
    await page.getByRole("button", { name: "Continue" }).click();
    await page.getByRole("button", { name: /New setup/ }).click();
    await page.getByLabel("Admin username").fill("olga");
    await page.getByLabel("Password", { exact: true }).fill("olga-password-1");
    await page.getByLabel("Password again").fill("olga-password-1");
    await page.getByLabel(/Also send backups to S3-compatible storage/).check();
    const box = page.getByTestId("wizard-offsite");
    await box.getByLabel("Endpoint", { exact: true }).fill(s3.endpoint);
    await box.getByLabel("Bucket", { exact: true }).fill("no-such-bucket");
    await box.getByLabel("Access key ID").fill("S3RVER");
    await box.getByLabel("Secret access key").fill("S3RVER");
    await page.getByRole("button", { name: "Create admin and finish" }).click();
    await expect(page.getByRole("alert").filter({ hasText: "The bucket no-such-bucket does not exist" })).toBeVisible();
    expect((await (await fetch(`${server.url}/api/health`)).json()).setup).toBe("required");

    await box.getByLabel("Bucket", { exact: true }).fill(s3.bucket);
    await page.getByRole("button", { name: "Create admin and finish" }).click();
    await expect(page).toHaveURL(/\/documents$/);
    const settings = fs.readFileSync(path.join(server.dataDir, "settings.yaml"), "utf8");
    expect(settings).toMatch(/offsite:\n\s+enabled: true\n\s+endpoint: http:\/\/127\.0\.0\.1:\d+\n/);
    expect(settings).toMatch(/secret_access_key: enc:v1:/);

    const cookie = await signInCookie(server, "olga", "olga-password-1");
    await uploadDocument(server, cookie, "first.txt", Buffer.from("the first document\n"));
    const run = await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: { cookie } });
    expect(run.status).toBe(201);
    expect((await run.json()).offsite).toMatchObject({ ok: true, uploaded: 1 });
  } finally {
    await server.stop();
    await s3.close();
  }
});
