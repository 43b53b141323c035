import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, type Server } from "./support/server";
import { readArchive } from "../lib/backup/format/reader";
import { isArchiveName } from "../lib/backup/format/tables";

test.describe.configure({ mode: "serial" });

let server: Server;
let admin: string;
let member: string;

async function api(p: string, init: RequestInit & { cookie?: string } = {}) {
  return fetch(server.url + p, { ...init, headers: { ...(init.headers ?? {}), ...(init.cookie ? { cookie: init.cookie } : {}) } });
}

test.beforeAll(async () => {
  server = await startServer();
  await setupInstance(server);
  admin = await signInCookie(server, "admin", "admin-password-1");
  const form = await api("/api/documents?name=hello.txt", { method: "POST", cookie: admin, body: "hello backup" });
  expect(form.status).toBe(201);
});
test.afterAll(async () => {
  await server?.stop();
});

test("backup routes: 401 anonymous, 403 member, 404 for bad names", async ({ browser }) => {
  // A member, added through the admin UI.
  const ctx = await browser.newContext();
  await ctx.addCookies(admin.split("; ").map((c) => ({ name: c.split("=")[0], value: c.slice(c.indexOf("=") + 1), url: server.url })));
  const page = await ctx.newPage();
  await page.goto(`${server.url}/settings/users`);
  await page.getByLabel("Username").fill("mia");
  await page.getByLabel("Password").fill("member-password-1");
  await page.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByText("Added mia.")).toBeVisible();
  await ctx.close();
  member = await signInCookie(server, "mia", "member-password-1");

  const routes: [string, string][] = [
    ["GET", "/api/backup/download?scope=full"],
    ["POST", "/api/settings/backup/run"],
    ["GET", "/api/settings/backup/files"],
    ["GET", "/api/settings/backup/files/coffer_full_20260101_000000Z.tar.gz"],
    ["DELETE", "/api/settings/backup/files/coffer_full_20260101_000000Z.tar.gz"],
  ];
  for (const [method, p] of routes) {
    expect((await api(p, { method })).status, `anon ${method} ${p}`).toBe(401);
    expect((await api(p, { method, cookie: member })).status, `member ${method} ${p}`).toBe(403);
  }
  for (const p of ["/settings/backup", "/settings/backup/schedule", "/settings/backup/encryption", "/settings/backup/offsite", "/settings/backup/proof", "/settings/backup/history"]) {
    expect((await api(p, { cookie: member, redirect: "manual" })).status, `member GET ${p}`).toBe(403);
  }

  fs.writeFileSync(path.join(server.dataDir, "backups", "notes.txt"), "not an archive");
  for (const bad of ["..%2Fcoffer.db", "coffer_full_x.tar.gz%2F..%2F..%2Fetc%2Fpasswd", "notes.txt", "coffer_full_20260101_000000Z.tar.gz"]) {
    // An escaped slash is refused at the entry (400 BAD_URL) before any route sees it; other bad names are 404s.
    const expected = bad.includes("%2F") ? 400 : 404;
    const res = await api(`/api/settings/backup/files/${bad}`, { cookie: admin });
    expect(res.status, bad).toBe(expected);
    expect((await api(`/api/settings/backup/files/${bad}`, { method: "DELETE", cookie: admin })).status, bad).toBe(expected);
  }
  expect((await api("/api/backup/download?scope=everything", { cookie: admin })).status).toBe(400);
  expect(fs.existsSync(path.join(server.dataDir, "backups", "notes.txt"))).toBe(true);
});

test("Download backup, Back up now, download a stored one, delete it", async ({ browser }, testInfo) => {
  const ctx = await browser.newContext();
  await ctx.addCookies(admin.split("; ").map((c) => ({ name: c.split("=")[0], value: c.slice(c.indexOf("=") + 1), url: server.url })));
  const page = await ctx.newPage();
  await page.goto(`${server.url}/settings`);
  await expect(page).toHaveURL(/\/settings\/backup$/);
  await expect(page.getByText("No stored backups yet.")).toBeVisible();

  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download full backup" }).click()]);
  expect(download.suggestedFilename()).toMatch(/^coffer_full_\d{8}_\d{6}Z\.tar\.gz$/);
  const file = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(file);
  const summary = await readArchive(fs.createReadStream(file));
  expect(summary.meta).toMatchObject({ scope: "full", trigger: "manual", vault: { objects: 1, bytes: 12 } });
  expect(summary.meta.tables.users).toBe(2);
  // Nothing was stored on the server, and no temp file stayed.
  expect(fs.readdirSync(path.join(server.dataDir, "backups")).filter(isArchiveName)).toEqual([]);
  expect(fs.readdirSync(path.join(server.dataDir, ".tmp"))).toEqual([]);

  await page.getByRole("button", { name: "Back up now" }).click();
  await expect(page.getByText(/Saved coffer_full_.*verified/)).toBeVisible();
  await expect(page.getByTestId("backup-row")).toHaveCount(1);
  await expect(page.getByTestId("backup-row")).toContainText("verified");
  await page.getByRole("navigation", { name: "Backup" }).getByRole("link", { name: "History" }).click();
  await expect(page.getByTestId("run-row").first()).toContainText("Succeeded");
  await page.getByRole("navigation", { name: "Backup" }).getByRole("link", { name: "Backups" }).click();

  const listed = await (await api("/api/settings/backup/files", { cookie: admin })).json();
  expect(listed.backups).toHaveLength(1);
  const name = listed.backups[0].name;
  const res = await api(`/api/settings/backup/files/${name}`, { cookie: admin });
  expect(res.status).toBe(200);
  const bytes = Buffer.from(await res.arrayBuffer());
  expect(bytes.length).toBe(listed.backups[0].size);
  expect(crypto.createHash("sha256").update(bytes).digest("hex")).toBe(
    crypto.createHash("sha256").update(fs.readFileSync(path.join(server.dataDir, "backups", name))).digest("hex"),
  );

  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: `Delete ${name}` }).click();
  await expect(page.getByText("No stored backups yet.")).toBeVisible();
  const audit = await (await api("/settings/audit?action=backup.", { cookie: admin })).text();
  expect(audit).toContain("backup.delete");
  expect(audit).toContain("backup.download");
  await ctx.close();

  const health = await (await api("/api/health", { cookie: admin })).json();
  expect(health.backup.last_status).toBe("success");
  expect(health.backup.last_success_at).toMatch(/^\d{4}-/);
});

test("a client that disconnects mid-download stops the work and leaves no temp file", async () => {
  // Enough data that the archive is still being written when the client leaves.
  for (let i = 0; i < 3; i++) {
    const r = await api(`/api/documents?name=big${i}.bin`, { method: "POST", cookie: admin, body: crypto.randomBytes(20 * 1024 * 1024) });
    expect(r.status).toBe(201);
  }
  const ctrl = new AbortController();
  const res = await api("/api/backup/download?scope=full", { cookie: admin, signal: ctrl.signal });
  const reader = res.body!.getReader();
  await reader.read();
  ctrl.abort();
  await expect.poll(() => fs.readdirSync(path.join(server.dataDir, ".tmp")).length, { timeout: 10_000 }).toBe(0);
  expect((await api("/api/health")).status).toBe(200);
});
