import fs from "node:fs";
import path from "node:path";
import { expect, test } from "@playwright/test";
import { cookiesFor, setupInstance, signInCookie, startServer, uploadDocument, type Server } from "./support/server";
import { startS3 } from "./support/s3";
import { currentSettings, saveSettings } from "../lib/settings/store";
import { encryptSecret } from "../lib/settings/secrets";

test("an admin brings back one deleted document from a stored backup in the browser, while the instance keeps what was done since", async ({ browser }) => {
  test.setTimeout(120_000);
  const s = await startServer();
  try {
    await setupInstance(s);
    const admin = await signInCookie(s, "admin", "admin-password-1");
    const contract = await uploadDocument(s, admin, "contract.pdf", Buffer.from("the contract as signed in March"));
    await uploadDocument(s, admin, "notes.txt", Buffer.from("notes"));
    const run = await fetch(`${s.url}/api/settings/backup/run`, { method: "POST", headers: { cookie: admin } });
    expect(run.status).toBe(201);
    const { name } = await run.json();
    expect((await fetch(`${s.url}/api/documents/${contract.id}`, { method: "DELETE", headers: { cookie: admin, origin: s.url } })).status).toBe(204);
    await uploadDocument(s, admin, "after.txt", Buffer.from("made after the backup"));

    // An id the backup lacks: a specific 4xx, nothing changes.
    const lacking = await fetch(`${s.url}/api/settings/backup/files/${name}/documents/restore`, { method: "POST", headers: { cookie: admin, origin: s.url, "content-type": "application/json" }, body: JSON.stringify({ ids: [999] }) });
    expect(lacking.status).toBe(422);
    expect((await lacking.json()).error.code).toBe("DOCUMENT_NOT_IN_BACKUP");

    const ctx = await browser.newContext();
    await ctx.addCookies(cookiesFor(s, admin));
    const page = await ctx.newPage();
    await page.goto(`${s.url}/settings/backup`);
    await page.getByRole("link", { name: `Documents in ${name}` }).click();
    const row = page.getByTestId(`backup-doc-${contract.id}`);
    await expect(row).toContainText("Deleted since");
    await expect(page.getByRole("row").filter({ hasText: "notes.txt" })).toContainText("Same as now");
    await row.getByRole("checkbox", { name: "Choose contract.pdf" }).check();
    await page.getByRole("button", { name: "Restore selected (1)" }).click();
    await expect(page.getByTestId("restored")).toContainText("Restored 1 document");

    const docs = (await (await fetch(`${s.url}/api/documents`, { headers: { cookie: admin } })).json()).documents as { id: number; name: string }[];
    expect(docs.map((d) => d.name).sort()).toEqual(["after.txt", "contract.pdf", "notes.txt"]);
    const back = docs.find((d) => d.name === "contract.pdf")!;
    expect(await (await fetch(`${s.url}/api/documents/${back.id}`, { headers: { cookie: admin } })).text()).toBe("the contract as signed in March");
    await ctx.close();
  } finally {
    await s.stop();
  }
});

test("an admin brings back one document erased for good from an offsite snapshot in the browser: one file fetched from the bucket, nothing else changed", async ({ browser }) => {
  test.setTimeout(150_000);
  const s3 = await startS3();
  const servers: Server[] = [];
  try {
    let s = await startServer();
    servers.push(s);
    await setupInstance(s);
    await s.stop();
    // Offsite on; continuous protection off, so a document erased for good loses its file at once.
    const settingsFile = path.join(s.dataDir, "settings.yaml");
    const configKey = fs.readFileSync(path.join(s.dataDir, "keys", "config.key"));
    const base = currentSettings(settingsFile);
    saveSettings(settingsFile, {
      ...base,
      backup: {
        ...base.backup,
        continuous: { ...base.backup.continuous, enabled: false },
        offsite: { enabled: true, endpoint: s3.endpoint, region: "us-east-1", bucket: s3.bucket, prefix: "granular", path_style: true, access_key_id: "S3RVER", secret_access_key: encryptSecret(configKey, "S3RVER"), checksum_compat: true },
      },
    });
    s = await startServer({ dataDir: s.dataDir });
    servers.push(s);
    const admin = await signInCookie(s, "admin", "admin-password-1");
    const contract = await uploadDocument(s, admin, "contract.pdf", Buffer.from("the contract as signed last month"));
    await uploadDocument(s, admin, "notes.txt", Buffer.from("notes"));
    const run = await fetch(`${s.url}/api/settings/backup/run`, { method: "POST", headers: { cookie: admin } });
    expect(run.status).toBe(201);
    expect((await run.json()).offsite).toMatchObject({ ok: true });
    const headers = { cookie: admin, origin: s.url };
    expect((await fetch(`${s.url}/api/documents/${contract.id}`, { method: "DELETE", headers })).status).toBe(204);
    expect((await fetch(`${s.url}/api/trash/${contract.id}`, { method: "DELETE", headers })).status).toBe(204);
    await uploadDocument(s, admin, "after.txt", Buffer.from("made after the backup"));

    const ctx = await browser.newContext();
    await ctx.addCookies(cookiesFor(s, admin));
    const page = await ctx.newPage();
    await page.goto(`${s.url}/settings/backup`);
    await page.getByTestId("offsite-row").getByRole("link", { name: /^Documents in / }).click();
    await expect(page.getByRole("heading", { name: "Documents in an offsite snapshot" })).toBeVisible();
    const snapshot = new URL(page.url()).pathname.split("/").pop()!;
    const row = page.getByTestId(`backup-doc-${contract.id}`);
    await expect(row).toContainText("Deleted since");
    await row.getByRole("checkbox", { name: "Choose contract.pdf" }).check();
    await page.getByRole("button", { name: "Restore selected (1)" }).click();
    await expect(page.getByTestId("restored")).toContainText("Restored 1 document");
    await ctx.close();

    const docs = (await (await fetch(`${s.url}/api/documents`, { headers: { cookie: admin } })).json()).documents as { id: number; name: string }[];
    expect(docs.map((d) => d.name).sort()).toEqual(["after.txt", "contract.pdf", "notes.txt"]);
    const back = docs.find((d) => d.name === "contract.pdf")!;
    expect(await (await fetch(`${s.url}/api/documents/${back.id}`, { headers: { cookie: admin } })).text()).toBe("the contract as signed last month");
    // The API says the same of a document the snapshot lacks.
    const lacking = await fetch(`${s.url}/api/settings/backup/offsite/snapshots/${snapshot}/documents/restore`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify({ ids: [999] }) });
    expect(lacking.status).toBe(422);
    expect((await lacking.json()).error.code).toBe("DOCUMENT_NOT_IN_BACKUP");
  } finally {
    for (const x of servers) await x.stop().catch(() => {});
    await s3.close();
  }
});
