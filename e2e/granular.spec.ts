import { expect, test } from "@playwright/test";
import { cookiesFor, setupInstance, signInCookie, startServer, uploadDocument } from "./support/server";

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
