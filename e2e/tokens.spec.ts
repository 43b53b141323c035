import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { test, expect } from "@playwright/test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { startServer, setupInstance, signInCookie, cookiesFor, uploadDocument, type Server } from "./support/server";

let server: Server;
test.beforeAll(async () => {
  server = await startServer();
  await setupInstance(server);
});
test.afterAll(async () => {
  await server?.stop();
});

async function createToken(page: import("@playwright/test").Page, name: string, scopes: string[]): Promise<string> {
  await page.goto(`${server.url}/settings/tokens`);
  await page.getByLabel("Name").fill(name);
  for (const s of scopes) await page.getByRole("checkbox", { name: new RegExp(s) }).check();
  await page.getByRole("button", { name: "Create token" }).click();
  const value = page.getByTestId("token-value");
  await expect(value).toBeVisible();
  return (await value.textContent())!.trim();
}

test("an admin makes API tokens in Settings; a script pulls last night's backup with one, scrapes metrics with another, and is refused everywhere else", async ({ browser }) => {
  const cookie = await signInCookie(server, "admin", "admin-password-1");
  await uploadDocument(server, cookie, "deed.pdf", Buffer.alloc(50_000, 3));
  const ctx = await browser.newContext();
  await ctx.addCookies(cookiesFor(server, cookie));
  const page = await ctx.newPage();

  // Before any token is made, the page says in place that tokens download nothing while backups are plain.
  await page.goto(`${server.url}/settings/tokens`);
  await expect(page.getByTestId("token-encryption-notice")).toContainText("Turn on encryption in Settings → Backup → Encryption");
  const pull = await createToken(page, "nas pull", ["backup:read"]);
  expect(pull).toMatch(/^coffer_pat_/);
  await page.reload();
  await expect(page.getByTestId("token-value")).toHaveCount(0); // shown once
  await expect(page.getByTestId("token-row").filter({ hasText: "nas pull" })).toContainText("Never");
  const monitor = await createToken(page, "prometheus", ["metrics:read", "backup:run"]);

  // Back up now with a token, from a script (no Origin, no cookie).
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const run = await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: bearer(monitor) });
  expect(run.status).toBe(201);
  expect(await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: bearer(pull) }).then((r) => r.status)).toBe(403);

  // Unencrypted, an archive holds the instance's keys: a read token lists but does not download.
  const plainList = await fetch(`${server.url}/api/settings/backup/files`, { headers: bearer(pull) });
  expect(plainList.status).toBe(200);
  const [plain] = (await plainList.json()).backups as { name: string }[];
  expect(plain.name).toMatch(/\.tar\.gz$/);
  const refused = await fetch(`${server.url}/api/settings/backup/files/${plain.name}`, { headers: bearer(pull) });
  expect(refused.status).toBe(403);
  expect((await refused.json()).error).toMatchObject({ code: "TOKEN_NEEDS_ENCRYPTION", message: expect.stringContaining("Turn on encryption in Settings → Backup → Encryption") });
  // The admin's session still downloads it.
  expect((await fetch(`${server.url}/api/settings/backup/files/${plain.name}`, { headers: { cookie } })).status).toBe(200);

  // Encryption on (as an admin does it in Settings), then a new backup.
  await page.goto(`${server.url}/settings/backup/encryption`);
  const card = page.getByTestId("encryption");
  await card.getByRole("button", { name: "Generate a key and encrypt backups" }).click();
  const identity = (await card.getByTestId("identity").textContent())!.trim();
  await card.getByLabel("Type the last 6 characters of the key").fill(identity.slice(-6));
  await card.getByRole("button", { name: "Encrypt backups for this key" }).click();
  await expect(card.getByTestId("encryption-status")).toContainText("encrypted for");
  await page.goto(`${server.url}/settings/tokens`);
  await expect(page.getByTestId("token-encryption-notice")).toHaveCount(0);
  expect((await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers: bearer(monitor) })).status).toBe(201);

  // The README's curl: list, then download the newest, which is ciphertext.
  const list = await fetch(`${server.url}/api/settings/backup/files`, { headers: bearer(pull) });
  expect(list.status).toBe(200);
  const [newest] = (await list.json()).backups as { name: string }[];
  expect(newest.name).toMatch(/\.tar\.gz\.age$/);
  const download = await fetch(`${server.url}/api/settings/backup/files/${newest.name}`, { headers: bearer(pull) });
  expect(download.status).toBe(200);
  const body = Buffer.from(await download.arrayBuffer());
  expect(body.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
  expect(body.equals(fs.readFileSync(path.join(server.dataDir, "backups", newest.name)))).toBe(true);
  // The plain archive from before encryption stays out of a token's reach, whatever its name says.
  const old = await fetch(`${server.url}/api/settings/backup/files/${plain.name}`, { headers: bearer(pull) });
  expect(old.status).toBe(403);
  expect((await old.json()).error.code).toBe("TOKEN_PLAIN_ARCHIVE");
  const disguised = plain.name.replace(/\.tar\.gz$/, "_9.tar.gz.age");
  fs.copyFileSync(path.join(server.dataDir, "backups", plain.name), path.join(server.dataDir, "backups", disguised));
  const lie = await fetch(`${server.url}/api/settings/backup/files/${disguised}`, { headers: bearer(pull) });
  expect(lie.status).toBe(403);
  expect((await lie.json()).error.code).toBe("TOKEN_PLAIN_ARCHIVE");
  fs.rmSync(path.join(server.dataDir, "backups", disguised));

  // README's own commands, as written there.
  const readme = fs.readFileSync(path.join(__dirname, "..", "README.md"), "utf8");
  const block = /Pull last\s+night's backup to another machine:\n\n```sh\n([\s\S]*?)```/.exec(readme)![1];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-pull-"));
  execFileSync("bash", ["-euo", "pipefail", "-c", block.replace(/^T=.*$/m, "")], { cwd: dir, env: { ...process.env, B: server.url, T: pull } });
  expect(fs.readFileSync(path.join(dir, newest.name)).equals(fs.readFileSync(path.join(server.dataDir, "backups", newest.name)))).toBe(true);
  fs.rmSync(dir, { recursive: true, force: true });

  // Metrics, parsed by a real parser.
  const metrics = await fetch(`${server.url}/api/metrics`, { headers: bearer(monitor) });
  expect(metrics.headers.get("content-type")).toContain("text/plain; version=0.0.4");
  const families = parsePrometheusTextFormat(await metrics.text());
  expect(families.find((f) => f.name === "coffer_backup_runs_total")?.metrics).toContainEqual({ labels: { target: "local", status: "success" }, value: "2" });
  expect((await fetch(`${server.url}/api/metrics`, { headers: bearer(pull) })).status).toBe(403);
  expect((await fetch(`${server.url}/api/metrics`)).status).toBe(401);
  // Health's details (schedule, encryption, offsite) go to a metrics:read token; anonymous callers get the status only.
  const detailed = await (await fetch(`${server.url}/api/health`, { headers: bearer(monitor) })).json();
  expect(detailed).toMatchObject({ setup: "complete", backup: { last_status: "success", offsite: { enabled: false } } });
  expect(Object.keys(await (await fetch(`${server.url}/api/health`)).json()).sort()).toEqual(["setup", "status"]);
  expect((await fetch(`${server.url}/api/health`, { headers: bearer(pull) })).status).toBe(403);

  // Never restore, users or settings: a token there is refused in words.
  const restore = await fetch(`${server.url}/api/settings/backup/files/${newest.name}/restore`, { method: "POST", headers: bearer(pull) });
  expect(restore.status).toBe(401);
  expect((await restore.json()).error).toMatchObject({ code: "TOKEN_NOT_ACCEPTED" });
  expect((await fetch(`${server.url}/api/settings/backup/files/${newest.name}`, { method: "DELETE", headers: bearer(pull) })).status).toBe(401);

  // Revoked in the browser: the next use is a 401 that says so.
  await page.goto(`${server.url}/settings/tokens`);
  await expect(page.getByTestId("token-row").filter({ hasText: "nas pull" })).not.toContainText("Never");
  await page.getByRole("button", { name: "Revoke nas pull" }).click();
  await expect(page.getByTestId("token-row").filter({ hasText: "nas pull" })).toContainText("Revoked");
  const revoked = await fetch(`${server.url}/api/settings/backup/files`, { headers: bearer(pull) });
  expect(revoked.status).toBe(401);
  expect((await revoked.json()).error.message).toMatch(/“nas pull” was revoked/);

  // Ten wrong tokens from this address: the guesses wait, the real token does not.
  for (let i = 0; i < 10; i++) expect((await fetch(`${server.url}/api/metrics`, { headers: bearer(`coffer_pat_${"x".repeat(43)}`) })).status).toBe(401);
  expect((await fetch(`${server.url}/api/metrics`, { headers: bearer(`coffer_pat_${"y".repeat(43)}`) })).status).toBe(429);
  expect((await fetch(`${server.url}/api/metrics`, { headers: bearer(monitor) })).status).toBe(200);
  // A known but revoked token is still told so, not made to wait.
  expect((await fetch(`${server.url}/api/settings/backup/files`, { headers: bearer(pull) })).status).toBe(401);

  // The audit log names the token for each use.
  await page.goto(`${server.url}/settings/audit`);
  await expect(page.getByText("token “nas pull”").first()).toBeVisible();
  await ctx.close();
});
