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

  // The README's curl: list, then download the newest.
  const list = await fetch(`${server.url}/api/settings/backup/files`, { headers: bearer(pull) });
  expect(list.status).toBe(200);
  const [newest] = (await list.json()).backups as { name: string }[];
  const download = await fetch(`${server.url}/api/settings/backup/files/${newest.name}`, { headers: bearer(pull) });
  expect(download.status).toBe(200);
  expect(Buffer.from(await download.arrayBuffer()).equals(fs.readFileSync(path.join(server.dataDir, "backups", newest.name)))).toBe(true);

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
  expect(families.find((f) => f.name === "coffer_backup_runs_total")?.metrics).toContainEqual({ labels: { target: "local", status: "success" }, value: "1" });
  expect((await fetch(`${server.url}/api/metrics`, { headers: bearer(pull) })).status).toBe(403);
  expect((await fetch(`${server.url}/api/metrics`)).status).toBe(401);

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

  // The audit log names the token for each use.
  await page.goto(`${server.url}/settings/audit`);
  await expect(page.getByText("token “nas pull”").first()).toBeVisible();
  await ctx.close();
});
