import fs from "node:fs";
import path from "node:path";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInViaUi, SETUP_CODE, type Server } from "./support/server";

/** Spellings of the cloud metadata address an outsider would try. */
const METADATA = ["http://169.254.169.254", "http://2852039166", "http://0xa9fea9fe", "http://[::ffff:169.254.169.254]", "http://[fd00:ec2::254]", "http://[fe80::1]:9000"];

test("the wizard refuses link-local (metadata) S3 endpoints in every spelling with a 400 and a sentence", async () => {
  const server: Server = await startServer();
  try {
    for (const endpoint of METADATA) {
      const res = await fetch(`${server.url}/api/setup/offsite/snapshots`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-setup-token": SETUP_CODE },
        body: JSON.stringify({ connection: { endpoint, bucket: "coffer", access_key_id: "k", secret_access_key: "s" } }),
      });
      expect(res.status, endpoint).toBe(400);
      const { error } = await res.json();
      expect(error.message, endpoint).toContain("link-local address");
      expect(error.fields?.["connection.endpoint"], endpoint).toContain("Coffer does not connect there");
    }
  } finally {
    await server.stop();
  }
});

test("Settings → Backup → Offsite: Test connection and Save refuse a metadata endpoint in words and save nothing", async ({ page }) => {
  const server: Server = await startServer();
  try {
    await setupInstance(server);
    await signInViaUi(page, server, "admin", "admin-password-1");
    await page.goto(`${server.url}/settings/backup/offsite`);
    await page.getByLabel("Endpoint", { exact: true }).fill("http://2852039166");
    await page.getByLabel("Bucket", { exact: true }).fill("coffer");
    await page.getByLabel("Access key ID").fill("AKIA");
    await page.getByLabel("Secret access key").fill("secret");
    await page.getByRole("button", { name: "Test connection" }).click();
    await expect(page.getByText("Coffer does not connect there").first()).toBeVisible();
    await page.getByRole("button", { name: "Save offsite settings" }).click();
    await expect(page.getByText("Coffer does not connect there").first()).toBeVisible();
    expect(fs.readFileSync(path.join(server.dataDir, "settings.yaml"), "utf8")).not.toContain("2852039166");
  } finally {
    await server.stop();
  }
});
