import { describe, it, expect } from "vitest";
import { clientAddress, normalizeAddress, parseTrustedProxies } from "@/lib/http/peer";
import { admitRequest, AUTH_BODY_CAP } from "@/lib/http/edge";
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
    expect(admitRequest("POST", "/api/auth/callback/credentials", { "content-length": String(AUTH_BODY_CAP) })).toEqual({ ok: true });
    expect(admitRequest("POST", "/api/auth/callback/credentials", { "content-length": String(AUTH_BODY_CAP + 1) })).toMatchObject({ status: 413 });
    expect(admitRequest("POST", "/api/auth/signout", { "transfer-encoding": "chunked" })).toMatchObject({ status: 411 });
    expect(admitRequest("POST", "/api/auth/callback/credentials", { "content-length": "12abc" })).toMatchObject({ status: 413 });
    expect(admitRequest("POST", "/api/documents", { "transfer-encoding": "chunked" })).toEqual({ ok: true }); // uploads cap themselves
  });

  it("answers a malformed %-escape with 400", () => {
    expect(admitRequest("GET", "/api/documents/%E0%A4%A", {})).toMatchObject({ status: 400, code: "BAD_URL" });
    expect(admitRequest("GET", "/documents?q=%zz", {})).toEqual({ ok: true }); // the query is the page's business
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
