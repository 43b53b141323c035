import { afterEach, describe, expect, it } from "vitest";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { makeSetUpInstance } from "../support/instance";
import { authenticateToken, createToken, listTokens, revokeToken, bearerOf } from "@/lib/auth/tokens";
import { clearAttempts } from "@/lib/auth/ratelimit";
import { listAudit } from "@/lib/audit/log";
import { writeStoredBackup } from "@/lib/backup/local/stored";
import { runDrill } from "@/lib/backup/proof/drill";
import { verifySlice } from "@/lib/backup/proof/verify";
import { renderMetrics } from "@/lib/metrics";
import { createDocument } from "@/lib/vault/documents";
import { Readable } from "node:stream";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function instance() {
  const t = await makeSetUpInstance();
  cleanups.push(t.cleanup);
  return { ...t, actor: { id: t.admin.id, name: t.admin.username, ip: "127.0.0.1" } };
}

describe("API tokens", () => {
  it("are shown once, kept as a hash, work only for their scopes, and every use is audited with the token's name", async () => {
    const { inst, actor } = await instance();
    const { token, row } = createToken(inst, actor, { name: "nas pull", scopes: ["backup:read"], expires_in_days: 30 });
    expect(token).toMatch(/^coffer_pat_[A-Za-z0-9_-]{43}$/);
    const stored = JSON.stringify(inst.db.prepare("SELECT * FROM api_tokens").all());
    expect(stored).not.toContain(token.slice(11));
    expect(row).toMatchObject({ name: "nas pull", scopes: ["backup:read"], last_used_at: null });

    const ok = authenticateToken(inst, token, "backup:read", "10.0.0.9", "list backups");
    expect(ok.actor).toEqual({ id: null, name: "token “nas pull”", ip: "10.0.0.9" });
    expect(listTokens(inst.db)[0].last_used_at).not.toBeNull();
    expect(listAudit(inst.db, { limit: 5, action: "token.use" })[0]).toMatchObject({ actor: "token “nas pull”", target: "list backups", ip: "10.0.0.9" });
    expect(() => authenticateToken(inst, token, "backup:run", "10.0.0.9", "Back up now")).toThrow(expect.objectContaining({ status: 403, code: "TOKEN_SCOPE" }));
  });

  it("a wrong, revoked or expired token is a 401 that says which; ten unknown ones from an address are then a 429, for guesses only", async () => {
    const { inst, actor } = await instance();
    const ip = "10.9.9.9";
    clearAttempts(`token:${ip}`);
    const { token, row } = createToken(inst, actor, { name: "old", scopes: ["metrics:read"], expires_in_days: 1 });
    const later = new Date(Date.now() + 2 * 86400_000);
    expect(() => authenticateToken(inst, token, "metrics:read", ip, "metrics", later)).toThrow(expect.objectContaining({ status: 401, code: "TOKEN_EXPIRED" }));
    revokeToken(inst, actor, row.id);
    expect(() => authenticateToken(inst, token, "metrics:read", ip, "metrics")).toThrow(expect.objectContaining({ status: 401, code: "TOKEN_REVOKED", message: expect.stringContaining("“old” was revoked") }));
    expect(() => authenticateToken(inst, "Basic abc", "metrics:read", ip, "metrics")).toThrow(expect.objectContaining({ code: "TOKEN_INVALID", message: "That is not a Coffer API token (they start coffer_pat_)." }));
    for (let i = 1; i < 10; i++) expect(() => authenticateToken(inst, `coffer_pat_${"x".repeat(43)}`, "metrics:read", ip, "metrics")).toThrow(expect.objectContaining({ status: 401, code: "TOKEN_INVALID" }));
    // The address guessed ten times: the next guess waits...
    expect(() => authenticateToken(inst, `coffer_pat_${"y".repeat(43)}`, "metrics:read", ip, "metrics")).toThrow(expect.objectContaining({ status: 429, code: "RATE_LIMITED" }));
    // ...but a valid token from the same address (NAT, a proxy) works, and a revoked one is still told so.
    const good = createToken(inst, actor, { name: "good", scopes: ["metrics:read"] }).token;
    expect(authenticateToken(inst, good, "metrics:read", ip, "metrics").token.name).toBe("good");
    expect(() => authenticateToken(inst, token, "metrics:read", ip, "metrics")).toThrow(expect.objectContaining({ status: 401, code: "TOKEN_REVOKED" }));
    expect(() => authenticateToken(inst, `coffer_pat_${"z".repeat(43)}`, "metrics:read", ip, "metrics")).toThrow(expect.objectContaining({ status: 429 }));
  });

  it("bearerOf reads only a Bearer header", () => {
    expect(bearerOf("Bearer coffer_pat_abc")).toBe("coffer_pat_abc");
    expect(bearerOf("bearer   coffer_pat_abc ")).toBe("coffer_pat_abc");
    expect(bearerOf("Basic dXNlcg==")).toBeNull();
    expect(bearerOf(null)).toBeNull();
  });
});

describe("Prometheus metrics", () => {
  it("parse with a real parser and say what was backed up, proven and stored", async () => {
    const { inst, admin } = await instance();
    await createDocument(inst, admin, null, { name: "a.txt", body: Readable.from([Buffer.from("metrics\n".repeat(100))]), maxBytes: 1e6 });
    const b = await writeStoredBackup(inst, { scope: "full", trigger: "manual" });
    await verifySlice(inst);
    await runDrill(inst, { trigger: "manual" });
    const text = renderMetrics(inst);
    const families = Object.fromEntries(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
    const value = (name: string, labels: Record<string, string> = {}) =>
      Number(families[name]?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value);

    expect(families.coffer_backup_runs_total.type).toBe("COUNTER");
    expect(value("coffer_backup_runs_total", { target: "local", status: "success" })).toBe(1);
    expect(value("coffer_backup_last_success_timestamp_seconds", { target: "local" })).toBeCloseTo(Date.now() / 1000, -2);
    expect(value("coffer_backup_last_size_bytes", { target: "local" })).toBe(b.bytes);
    expect(value("coffer_verification_objects", { target: "local", result: "ok" })).toBe(1);
    expect(value("coffer_drills_total", { status: "success" })).toBe(1);
    expect(value("coffer_drill_last_recovery_seconds")).toBeGreaterThan(0);
    expect(value("coffer_documents")).toBe(1);
    expect(value("coffer_vault_size_bytes")).toBe(800);
    expect(value("coffer_lock_held_seconds")).toBe(0);
    expect(families.coffer_backup_last_success_timestamp_seconds.metrics.map((m) => m.labels?.target)).toEqual(["local"]); // no offsite runs, no offsite sample
    for (const f of Object.values(families)) expect(f.name).toMatch(/^coffer_[a-z_]+$/);
    for (const f of Object.values(families).filter((x) => x.type === "COUNTER")) expect(f.name).toMatch(/_total$/);
  });
});
