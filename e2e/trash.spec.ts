import fs from "node:fs";
import path from "node:path";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, cookiesFor, uploadDocument, addUserViaUi, type Server } from "./support/server";

let server: Server;
test.beforeAll(async () => {
  server = await startServer();
  await setupInstance(server);
});
test.afterAll(async () => {
  await server?.stop();
});

test("a member deletes a document and undoes it; deletes again and restores it from the trash; only an admin erases", async ({ browser }) => {
  const admin = await signInCookie(server, "admin", "admin-password-1");
  await addUserViaUi(browser, server, admin, "mia", "member-password-1");
  const mia = await signInCookie(server, "mia", "member-password-1");
  const { id } = await uploadDocument(server, mia, "lease 2026.pdf", Buffer.alloc(40_000, 5));

  const ctx = await browser.newContext();
  await ctx.addCookies(cookiesFor(server, mia));
  const page = await ctx.newPage();
  await page.goto(`${server.url}/documents`);
  await page.getByRole("button", { name: "Delete lease 2026.pdf" }).click();
  await expect(page.getByText("No documents yet.")).toBeVisible();
  await expect(page.getByRole("status")).toContainText("Moved “lease 2026.pdf” to the trash; it stays there 30 days.");
  await page.getByRole("button", { name: "Undo" }).click();
  await expect(page.getByRole("cell", { name: "lease 2026.pdf", exact: true })).toBeVisible();

  await page.getByRole("button", { name: "Delete lease 2026.pdf" }).click();
  await page.getByRole("status").getByRole("link", { name: "trash" }).click();
  await expect(page).toHaveURL(/\/trash$/);
  await expect(page.getByRole("heading", { name: "Trash" })).toBeVisible();
  await expect(page.getByTestId("trash-usage")).toHaveText("39 KB in the trash, counted in your storage use until it is erased.");
  await expect(page.getByRole("button", { name: "Delete lease 2026.pdf forever" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Empty trash" })).toHaveCount(0);
  fs.mkdirSync(path.join("test-results"), { recursive: true });
  await page.setViewportSize({ width: 390, height: 700 });
  await page.screenshot({ path: "test-results/trash-member-phone.png", fullPage: true });
  await page.setViewportSize({ width: 1100, height: 700 });

  // A script does the same through the API; a member may not erase.
  const list = await (await fetch(`${server.url}/api/trash`, { headers: { cookie: mia } })).json();
  expect(list).toMatchObject({ retention_days: 30, bytes: 40_000, documents: [{ id, name: "lease 2026.pdf", owner: "mia" }] });
  const refused = await fetch(`${server.url}/api/trash/${id}`, { method: "DELETE", headers: { cookie: mia } });
  expect(refused.status).toBe(403);
  expect((await refused.json()).error.message).toContain("Only an admin can delete a document forever");
  expect((await fetch(`${server.url}/api/trash`, { method: "DELETE", headers: { cookie: mia } })).status).toBe(403);
  expect((await fetch(`${server.url}/api/trash/${id}/restore`, { method: "POST", headers: { cookie: admin } })).status).toBe(200);
  expect((await fetch(`${server.url}/api/documents/${id}`, { method: "DELETE", headers: { cookie: mia } })).headers.get("x-coffer-trashed")).toBe("1");
  expect((await fetch(`${server.url}/api/trash/abc/restore`, { method: "POST", headers: { cookie: mia } })).status).toBe(404);
  expect((await fetch(`${server.url}/api/documents/${id}`, { headers: { cookie: mia } })).status).toBe(404); // not downloadable from the trash

  await page.reload();
  await page.getByRole("button", { name: "Restore lease 2026.pdf" }).click();
  await expect(page.getByRole("status")).toContainText("“lease 2026.pdf” is back in Documents.");
  await expect(page.getByText("The trash is empty.")).toBeVisible();
  await page.goto(`${server.url}/documents`);
  await expect(page.getByRole("cell", { name: "lease 2026.pdf", exact: true })).toBeVisible();

  // The admin sees everyone's trash and erases for good.
  await fetch(`${server.url}/api/documents/${id}`, { method: "DELETE", headers: { cookie: mia } });
  const other = await uploadDocument(server, admin, "old draft.txt", Buffer.from("draft"));
  await fetch(`${server.url}/api/documents/${other.id}`, { method: "DELETE", headers: { cookie: admin } });
  const actx = await browser.newContext();
  await actx.addCookies(cookiesFor(server, admin));
  const apage = await actx.newPage();
  await apage.goto(`${server.url}/trash`);
  await expect(apage.getByRole("cell", { name: "mia", exact: true })).toBeVisible();
  await apage.screenshot({ path: "test-results/trash-admin.png", fullPage: true });
  apage.once("dialog", (d) => d.accept());
  await apage.getByRole("button", { name: "Delete old draft.txt forever" }).click();
  await expect(apage.getByRole("status")).toContainText("“old draft.txt” is erased.");
  apage.once("dialog", (d) => d.accept());
  await apage.getByRole("button", { name: "Empty trash" }).click();
  await expect(apage.getByRole("status")).toContainText("for good");
  await expect(apage.getByRole("paragraph").filter({ hasText: "The trash is empty." })).toBeVisible();
  const audit = await (await fetch(`${server.url}/api/trash`, { headers: { cookie: admin } })).json();
  expect(audit.documents).toEqual([]);
  await ctx.close();
  await actx.close();
});
