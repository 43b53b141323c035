import http from "node:http";
import type dns from "node:dns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpointProblem, guardedLookup } from "@/lib/http/endpoint-guard";
import { connectionSchema } from "@/lib/backup/offsite/location";
import { testOffsite } from "@/lib/backup/offsite/checks";
import { makeSetUpInstance } from "../support/instance";
import { startS3, type TestS3 } from "../support/s3";

const METADATA_SPELLINGS = [
  "http://169.254.169.254",
  "http://169.254.169.254:80/latest/meta-data/",
  "http://2852039166/",
  "http://0xa9fea9fe/",
  "http://0251.0376.0251.0376/",
  "http://169.254.43518/",
  "http://169.254.169.254./",
  "http://[::ffff:169.254.169.254]/",
  "http://[::ffff:a9fe:a9fe]/",
  "http://[64:ff9b::169.254.169.254]/",
  "http://[fe80::1]:9000",
  "https://[fd00:ec2::254]/",
  "http://169.254.1.1:9000",
];
const ALLOWED = ["http://127.0.0.1:9000", "http://localhost:9000", "http://[::1]:9000", "http://192.168.1.20:9000", "http://10.0.0.5", "http://172.16.0.9", "https://s3.eu-central-1.amazonaws.com", "http://169.255.0.1"];

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3();
});
afterAll(async () => {
  await s3?.close();
});

describe("S3 endpoints may not point at link-local (cloud metadata) addresses", () => {
  it.each(METADATA_SPELLINGS)("%s is refused with a sentence, in the wizard's connection schema", (endpoint) => {
    expect(endpointProblem(endpoint)).toMatchObject({ status: 400, code: "OFFSITE_ENDPOINT_FORBIDDEN", message: expect.stringContaining("link-local address") });
    const parsed = connectionSchema.safeParse({ endpoint, bucket: "coffer", access_key_id: "k", secret_access_key: "s" });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]).toMatchObject({ path: ["endpoint"], message: expect.stringContaining("Coffer does not connect there") });
  });

  it.each(ALLOWED)("%s (loopback, LAN, public) is allowed", (endpoint) => {
    expect(endpointProblem(endpoint)).toBeNull();
  });

  it("Test connection refuses a metadata endpoint before connecting (400), and still reaches storage on loopback by name", async () => {
    const t = await makeSetUpInstance();
    try {
      const loc = await s3.location("guard");
      for (const endpoint of ["http://169.254.169.254", "http://2852039166", "http://[::ffff:169.254.169.254]"]) {
        await expect(testOffsite(t.inst, { ...loc, endpoint })).rejects.toMatchObject({ status: 400, code: "OFFSITE_ENDPOINT_FORBIDDEN" });
      }
      const byName = loc.endpoint.replace("127.0.0.1", "localhost");
      await expect(testOffsite(t.inst, { ...loc, endpoint: byName })).resolves.toMatchObject({ ok: true });
    } finally {
      t.cleanup();
    }
  });

  it("a host name that resolves to 169.254.x.x is refused at connect time, after DNS; one resolving to loopback connects", async () => {
    let connections = 0;
    const server = http.createServer((_req, res) => res.end("ok"));
    server.on("connection", () => connections++);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    // DNS as a hostile or rebinding resolver would answer: the address of the name's choosing.
    const answering = (address: string) =>
      ((_host: string, opts: dns.LookupOptions, cb: (e: null, a: string | dns.LookupAddress[], f?: number) => void) =>
        opts.all ? cb(null, [{ address, family: address.includes(":") ? 6 : 4 }]) : cb(null, address, address.includes(":") ? 6 : 4)) as unknown as typeof dns.lookup;
    const get = (address: string) =>
      new Promise<string>((resolve, reject) => {
        const agent = new http.Agent({ lookup: guardedLookup(answering(address)) as never });
        http
          .get({ host: "storage.example.test", port, agent }, (res) => {
            res.resume();
            res.on("end", () => resolve(String(res.statusCode)));
          })
          .on("error", reject);
      });
    try {
      for (const address of ["169.254.169.254", "::ffff:169.254.169.254", "fe80::1"]) {
        await expect(get(address)).rejects.toMatchObject({ status: 400, code: "OFFSITE_ENDPOINT_FORBIDDEN", message: expect.stringContaining("storage.example.test") });
      }
      expect(connections).toBe(0);
      await expect(get("127.0.0.1")).resolves.toBe("200");
      expect(connections).toBe(1);
    } finally {
      server.close();
    }
  });
});
