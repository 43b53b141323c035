import { describe, it, expect } from "vitest";
import { clientAddress, normalizeAddress, parseTrustedProxies } from "@/lib/http/peer";
import { admitRequest, AUTH_BODY_CAP, bodyCap, DEFAULT_BODY_CAP, normalizePath } from "@/lib/http/edge";
import { ConnectionGate, serverLimits } from "@/lib/http/limits";
import { backoffDelayMs, backoffWait, recordFailure } from "@/lib/auth/ratelimit";
import { issueDeviceToken, verifyDeviceToken, cookieValue } from "@/lib/auth/device";

describe("client address", () => {
  const none = parseTrustedProxies("");
  const proxies = parseTrustedProxies("10.0.0.0/8, 192.168.1.5, fd00::/8");

  it("is the TCP peer unless the peer is a trusted proxy", () => {
    expect(clientAddress("203.0.113.9", "1.2.3.4", none)).toBe("203.0.113.9");
    expect(clientAddress("::ffff:203.0.113.9", "1.2.3.4", proxies)).toBe("203.0.113.9");
    expect(clientAddress("10.1.2.3", undefined, proxies)).toBe("10.1.2.3");
  });

  it("takes the right-most entry no trusted proxy wrote, never one the client wrote", () => {
    expect(clientAddress("10.1.2.3", "6.6.6.6, 198.51.100.7", proxies)).toBe("198.51.100.7");
    expect(clientAddress("10.1.2.3", "6.6.6.6, 198.51.100.7, 192.168.1.5", proxies)).toBe("198.51.100.7");
    expect(clientAddress("10.1.2.3", ["6.6.6.6", "198.51.100.7, 10.9.9.9"], proxies)).toBe("198.51.100.7");
    expect(clientAddress("fd00::1", "2001:db8::5", proxies)).toBe("2001:db8::5");
    // Garbage where an address should be: stop at the last hop we can vouch for.
    expect(clientAddress("10.1.2.3", "not-an-ip", proxies)).toBe("10.1.2.3");
    // Every hop trusted: the farthest proxy is as near the client as anyone can tell.
    expect(clientAddress("10.1.2.3", "10.4.4.4", proxies)).toBe("10.4.4.4");
  });

  it("normalizes the forms proxies write, and refuses a bad COFFER_TRUSTED_PROXIES with a sentence", () => {
    expect(normalizeAddress("[2001:DB8::1]:443")).toBe("2001:db8::1");
    expect(normalizeAddress("1.2.3.4:5678")).toBe("1.2.3.4");
    expect(normalizeAddress("fe80::1%eth0")).toBe("fe80::1");
    expect(normalizeAddress("unknown")).toBeNull();
    expect(() => parseTrustedProxies("10.0.0.0/33")).toThrow(/prefix length/);
    expect(() => parseTrustedProxies("proxy.local")).toThrow(/not an IP address/);
  });
});

describe("admitting a request", () => {
  it("caps next-auth's bodies by declared length and refuses chunked ones", () => {
    expect(admitRequest("POST", "/api/auth/callback/credentials", { "content-length": String(AUTH_BODY_CAP) })).toMatchObject({ ok: true, cap: AUTH_BODY_CAP });
    expect(admitRequest("POST", "/api/auth/callback/credentials", { "content-length": String(AUTH_BODY_CAP + 1) })).toMatchObject({ status: 413 });
    expect(admitRequest("POST", "/api/auth/signout", { "transfer-encoding": "chunked" })).toMatchObject({ status: 411 });
    expect(admitRequest("POST", "/api/auth/callback/credentials", { "content-length": "12abc" })).toMatchObject({ status: 400, code: "BAD_LENGTH" });
    expect(admitRequest("POST", "/api/documents", { "transfer-encoding": "chunked" })).toMatchObject({ ok: true, cap: null }); // uploads cap themselves
  });

  // The probe's bypass: Next resolves these before routing, so the cap must too.
  const signIn = [
    "/api/./auth/callback/credentials",
    "/api/%2e/auth/callback/credentials",
    "/api/%2E%2e/api/auth/callback/credentials",
    "/api/x/../auth/callback/credentials",
    "/api/x/%2e%2E/auth/callback/credentials",
    "/./api/auth/callback/credentials",
    "/../api/auth/callback/credentials",
    "//api//auth///callback/credentials",
    "/api/%61%75%74%68/callback/credentials",
    "/api\\auth\\callback\\credentials",
    "/API/Auth/callback/credentials",
    "/api/auth/callback/credentials/",
    "http://coffer.example/api/./auth/callback/credentials",
  ];
  it.each(signIn)("%s is the sign-in route, capped at 8 KiB", (spelling) => {
    expect(admitRequest("POST", `${spelling}?x=1`, { "content-length": String(AUTH_BODY_CAP + 1) })).toMatchObject({ status: 413, code: "TOO_LARGE" });
    expect(admitRequest("POST", spelling, { "transfer-encoding": "chunked" })).toMatchObject({ status: 411 });
    const ok = admitRequest("POST", `${spelling}?x=/../1`, { "content-length": "10" });
    expect(ok).toMatchObject({ ok: true, cap: AUTH_BODY_CAP });
    if (ok.ok && !/API|Auth/.test(spelling)) expect(ok.url).toMatch(/^\/api\/auth\/callback\/credentials\/?\?x=\/\.\.\/1$/);
  });

  it("normalises once: unreserved escapes decoded, others kept, dot segments never above the root", () => {
    const n = (p: string) => normalizePath(p);
    expect(n("/a/%7e%41%2D%5f")).toEqual({ ok: true, path: "/a/~A-_" });
    expect(n("/a/%c3%a9%20b")).toEqual({ ok: true, path: "/a/%C3%A9%20b" });
    expect(n("/a/b/..")).toEqual({ ok: true, path: "/a/" });
    expect(n("/a/b/.")).toEqual({ ok: true, path: "/a/b/" });
    expect(n("/../../x")).toEqual({ ok: true, path: "/x" });
    expect(n("/")).toEqual({ ok: true, path: "/" });
    expect(n("/%252e%252e/x")).toEqual({ ok: true, path: "/%252e%252e/x" }); // an escaped "%" is not a dot
  });

  it.each([
    ["/api%2fauth/callback/credentials", /escaped slash/],
    ["/api/auth%2Fcallback/credentials", /escaped slash/],
    ["/api%5cauth/callback/credentials", /escaped slash/],
    ["/api/auth/%00", /control character/],
    ["/api/documents/%E0%A4%A", /malformed/],
    ["/api/documents/%c3", /malformed/],
    ["/api/%zz", /malformed/],
    ["*", /starts with \//],
  ])("refuses %s with 400 and a sentence", (spelling, sentence) => {
    expect(admitRequest("POST", spelling, { "content-length": "1" })).toMatchObject({ ok: false, status: 400, code: "BAD_URL", message: expect.stringMatching(sentence) });
  });

  it("leaves the query to the page", () => {
    expect(admitRequest("GET", "/documents?q=%zz", {})).toEqual({ ok: true, url: "/documents?q=%zz", cap: DEFAULT_BODY_CAP });
  });

  it("gives every body without a route cap the default cap; uploads and restores keep theirs", () => {
    for (const p of ["/api/setup/verify", "/api/documents/3", "/settings/users", "/", "/api/restore/x/apply", "/api/health"]) {
      expect(bodyCap("POST", p)).toBe(DEFAULT_BODY_CAP);
    }
    expect(admitRequest("POST", "/settings/users", { "content-length": String(DEFAULT_BODY_CAP + 1) })).toMatchObject({ status: 413, message: expect.stringMatching(/at most 1 MiB/) });
    expect(admitRequest("GET", "/api/health", { "content-length": String(DEFAULT_BODY_CAP + 1) })).toMatchObject({ status: 413 });
    for (const p of ["/api/documents", "/api/./documents", "/api/setup/restore", "/api/settings/backup/x/../restore"]) expect(bodyCap("POST", normalizePath(p).ok ? (normalizePath(p) as { path: string }).path : p)).toBeNull();
    expect(bodyCap("PUT", "/api/documents")).toBe(DEFAULT_BODY_CAP);
    expect(admitRequest("POST", "/api/documents", { "content-length": String(50 * DEFAULT_BODY_CAP) })).toMatchObject({ ok: true, cap: null });
  });
});

describe("server limits", () => {
  it("default to 30 s headers, 30 s body stall, 5 s keep-alive, 64 per address and 1024 in all; a bad value is a sentence", () => {
    expect(serverLimits({})).toEqual({ headersTimeoutMs: 30_000, bodyIdleMs: 30_000, keepAliveTimeoutMs: 5_000, checkIntervalMs: 3_000, perAddress: 64, total: 1024 });
    expect(serverLimits({ COFFER_HEADERS_TIMEOUT_MS: "2000", COFFER_MAX_CONNECTIONS: "5" })).toMatchObject({ headersTimeoutMs: 2000, checkIntervalMs: 200, total: 5 });
    expect(() => serverLimits({ COFFER_MAX_CONNECTIONS_PER_ADDRESS: "0" })).toThrow(/COFFER_MAX_CONNECTIONS_PER_ADDRESS must be a whole number/);
    expect(() => serverLimits({ COFFER_BODY_IDLE_TIMEOUT_MS: "30s" })).toThrow(/not "30s"/);
  });

  it("count connections per address and in all; a trusted proxy's count towards the total only", () => {
    const gate = new ConnectionGate({ perAddress: 2, total: 4 });
    expect(gate.admit("10.0.0.1", false)).toBeNull();
    expect(gate.admit("10.0.0.1", false)).toBeNull();
    expect(gate.admit("10.0.0.1", false)).toMatch(/from your address \(at most 2\)/);
    expect(gate.admit("127.0.0.1", true)).toBeNull();
    expect(gate.admit("127.0.0.1", true)).toBeNull();
    expect(gate.admit("10.0.0.2", false)).toMatch(/too many open connections/);
    gate.release("10.0.0.1", false);
    expect(gate.admit("10.0.0.2", false)).toBeNull();
    expect(gate.openConnections).toBe(4);
  });
});

describe("sign-in backoff and device tokens", () => {
  const b = { free: 3, baseMs: 1000, maxMs: 8000, forgetMs: 60_000 };

  it("grows the delay after the free tries, caps it, and forgets after a quiet spell", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 9].map((n) => backoffDelayMs(n, b))).toEqual([0, 0, 0, 1000, 2000, 4000, 8000, 8000]);
    const k = `t-${Math.random()}`;
    for (let i = 0; i < 5; i++) recordFailure(k, b, 1_000);
    expect(backoffWait(k, b, 1_000)).toBe(4); // 5 failures: 4 s from the last
    expect(backoffWait(k, b, 5_000)).toBe(0);
    expect(backoffWait(k, b, 62_000)).toBe(0);
    recordFailure(k, b, 70_000); // forgotten: counts from one again
    expect(backoffWait(k, b, 70_000)).toBe(0);
  });

  it("a device token is bound to its user and its key, and expires", () => {
    const key = Buffer.alloc(32, 1);
    const t = issueDeviceToken(key, "Admin", 0);
    expect(verifyDeviceToken(key, t, "admin", 1000)).toMatch(/^[0-9a-f]{24}$/);
    expect(verifyDeviceToken(key, t, "mallory", 1000)).toBeNull();
    expect(verifyDeviceToken(Buffer.alloc(32, 2), t, "admin", 1000)).toBeNull();
    expect(verifyDeviceToken(key, t.slice(0, -2) + "AA", "admin", 1000)).toBeNull();
    expect(verifyDeviceToken(key, t, "admin", 366 * 24 * 3600 * 1000)).toBeNull();
    expect(cookieValue(`a=1; coffer_device=${t}; b=2`, "coffer_device")).toBe(t);
  });
});
