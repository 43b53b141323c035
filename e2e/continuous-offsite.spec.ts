import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { expect, test } from "@playwright/test";
import { openRestoreWizard, SETUP_CODE, setupInstance, signInCookie, signInViaUi, startServer, uploadDocument, type Server } from "./support/server";
import { startS3 } from "./support/s3";

/**
 * The disk lost: a server whose every change went to the bucket within
 * seconds (continuous protection offsite) is killed; a fresh server
 * restores from the bucket in the wizard, to the newest second or to one
 * before a document came, with the real Litestream and a real S3 server.
 */
const litestream = path.resolve(__dirname, "../node_modules/@flydotio/litestream-linux-x64/litestream");
const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
const shots = process.env.COFFER_SCREENSHOTS;

test("a server lost: a fresh one restores from the bucket to seconds before the loss, in the wizard", async ({ browser }) => {
  test.skip(!fs.existsSync(litestream) && !process.env.COFFER_LITESTREAM, "no Litestream binary (npm install @flydotio/litestream-linux-x64)");
  test.setTimeout(180_000);
  const s3 = await startS3();
  const servers: Server[] = [];
  try {
    const a = await startServer({ env: { COFFER_CONTINUOUS_OFFSITE_MS: "1000" } });
    servers.push(a);
    await setupInstance(a);
    const admin = await signInCookie(a, "admin", "admin-password-1");
    const page = await browser.newPage();
    await signInViaUi(page, a, "admin", "admin-password-1");
    await page.goto(`${a.url}/settings/backup/offsite`);
    await page.getByLabel("Endpoint", { exact: true }).fill(s3.endpoint);
    await page.getByLabel("Bucket", { exact: true }).fill(s3.bucket);
    await page.getByLabel("Folder in the bucket (prefix)").fill("home");
    await page.getByLabel("Access key ID").fill("S3RVER");
    await page.getByLabel("Secret access key").fill("S3RVER");
    await page.getByLabel("Send every backup offsite").check();
    await page.getByRole("button", { name: "Save offsite settings" }).click();
    await expect(page.getByRole("status").filter({ hasText: "Every backup now also goes to this bucket" })).toBeVisible();

    const health = async () => {
      const h = await (await fetch(`${a.url}/api/health`, { headers: { cookie: admin } })).json();
      return h.continuous as { location: string; lag_seconds: number | null; last_restorable_at: string | null }[];
    };
    const offsite = async () => (await health()).find((c) => c.location === "offsite");
    const deed = crypto.randomBytes(300_000);
    await uploadDocument(a, admin, "deed.pdf", deed);
    // In the bucket once its newest second is after the upload (Litestream syncs each second, Coffer ships every second here).
    const sent = async (after: number) => {
      await expect.poll(async () => Date.parse((await offsite())?.last_restorable_at ?? "0"), { timeout: 30_000, message: `the bucket did not follow:\n${a.logs().slice(-2000)}` }).toBeGreaterThan(after);
    };
    await sent(Date.now());
    await new Promise((r) => setTimeout(r, 1500));
    const beforeLetter = Math.floor(Date.now() / 1000) * 1000;
    await new Promise((r) => setTimeout(r, 1200));
    const letter = Buffer.from("the last letter before the disk died\n".repeat(100));
    await uploadDocument(a, admin, "letter.txt", letter);
    const wrote = Date.now();
    await sent(wrote);
    // A segment written just after the upload may hold frames read just before its commit: once Litestream's next
    // syncs have passed, the bucket holds everything the local replica does (lag 0).
    await new Promise((r) => setTimeout(r, 2500));
    await expect.poll(async () => (await offsite())?.lag_seconds, { timeout: 20_000 }).toBe(0);
    // Health shows both places, and what the bucket's copy costs.
    await page.goto(`${a.url}/settings/health`);
    const protection = page.getByTestId("protection");
    await expect(protection).toContainText(/Continuous, on this server\s*✓ Every second from .* UTC to .* UTC, up to date/);
    await expect(protection).toContainText(/Continuous, in the bucket\s*✓ Every second from .* UTC to .* UTC, up to date; \d+ uploads and .* an hour since this server started/);
    if (shots) await page.screenshot({ path: path.join(shots, "health-continuous.png"), fullPage: true });
    // The disk dies: no shutdown, nothing more leaves the machine.
    const lostAt = Date.now();
    await a.stop("SIGKILL");

    // A new server, nothing on it: the wizard finds the continuous copy beside the snapshots.
    const b = await startServer();
    servers.push(b);
    const wizard = await browser.newPage();
    await openRestoreWizard(wizard, b);
    await wizard.getByRole("tab", { name: "From S3-compatible storage" }).click();
    await wizard.getByLabel("Endpoint", { exact: true }).fill(s3.endpoint);
    await wizard.getByLabel("Bucket", { exact: true }).fill(s3.bucket);
    await wizard.getByLabel("Folder in the bucket (prefix)").fill("home");
    await wizard.getByLabel("Access key ID").fill("S3RVER");
    await wizard.getByLabel("Secret access key").fill("S3RVER");
    await wizard.getByRole("button", { name: "Show backups in this bucket" }).click();
    const copy = wizard.getByTestId("offsite-continuous");
    await expect(copy).toContainText("This bucket also keeps every change from");
    await expect(copy.getByText("This is the newest second kept.")).toBeVisible();
    if (shots) await wizard.screenshot({ path: path.join(shots, "wizard-continuous.png"), fullPage: true });

    const input = copy.getByLabel("Restore to");
    const newest = await input.inputValue();
    const local = (ms: number) => {
      const d = new Date(ms);
      const pad = (n: number) => String(n).padStart(2, "0");
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    };
    // The newest second kept is within ten seconds of the loss (the input shows local time, as Date.parse reads a time without a zone).
    expect(lostAt - new Date(newest).getTime()).toBeLessThan(10_000);
    await input.fill(local(Date.now() + 3_600_000));
    await expect(copy.getByText("That time is outside the window above.")).toBeVisible();
    await expect(copy.getByRole("button", { name: "Restore to this time" })).toBeDisabled();
    await input.fill(newest);
    await copy.getByRole("button", { name: "Restore to this time" }).click();
    const preview = wizard.getByTestId("restore-preview");
    await expect(preview).toBeVisible({ timeout: 60_000 });
    await expect(preview).toContainText("from the continuous copy in s3://");
    if (shots) await wizard.screenshot({ path: path.join(shots, "wizard-continuous-preview.png"), fullPage: true });
    await wizard.getByRole("button", { name: "Restore this backup" }).click();
    await expect(wizard).toHaveURL(/\/login\?restored=/, { timeout: 30_000 });

    const bCookie = await signInCookie(b, "admin", "admin-password-1");
    const docs = (await (await fetch(`${b.url}/api/documents`, { headers: { cookie: bCookie } })).json()).documents as { id: number; name: string }[];
    expect(docs.map((d) => d.name).sort()).toEqual(["deed.pdf", "letter.txt"]);
    for (const d of docs) {
      const res = await fetch(`${b.url}/api/documents/${d.id}`, { headers: { cookie: bCookie } });
      expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(sha(d.name === "deed.pdf" ? deed : letter));
    }
    await b.stop();
    servers.pop();

    // Another fresh server, to the second before the letter: the API answers a preview of that moment.
    const c = await startServer();
    servers.push(c);
    const conn = { endpoint: s3.endpoint, region: "us-east-1", bucket: s3.bucket, prefix: "home", path_style: true, access_key_id: "S3RVER", secret_access_key: "S3RVER", checksum_compat: true };
    const post = (body: unknown) =>
      fetch(`${c.url}/api/setup/offsite/restore`, { method: "POST", headers: { "content-type": "application/json", "x-setup-token": SETUP_CODE, origin: c.url }, body: JSON.stringify(body) });
    const both = await post({ connection: conn, at: new Date(beforeLetter).toISOString(), snapshot: "coffer_full_20261120_030000Z.tar.gz" });
    expect(both.status).toBe(400);
    expect((await both.json()).error.code).toBe("SNAPSHOT_OR_TIME");
    const early = await post({ connection: conn, at: "2020-01-01T00:00:00Z" });
    expect(early.status).toBe(422);
    expect((await early.json()).error.code).toBe("OUTSIDE_WINDOW");
    const res = await post({ connection: conn, at: new Date(beforeLetter).toISOString() });
    expect(res.status).toBe(201);
    const staged = await res.json();
    expect(staged.created_at).toBe(new Date(beforeLetter).toISOString());
    expect(staged.tables.documents).toBe(1);
  } finally {
    for (const s of servers) await s.stop().catch(() => {});
    await s3.close();
  }
});
