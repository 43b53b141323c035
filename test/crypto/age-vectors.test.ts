import crypto from "node:crypto";
import zlib from "node:zlib";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import * as vectors from "cctv-age";
import { AgeError, createDecryptStream, parseIdentities, type AgeKeys } from "@/lib/crypto/age";

/**
 * The C2SP/CCTV age test vectors (npm cctv-age): each is a few "key: value"
 * lines, a blank line, then an age file, maybe zlib-compressed. Every vector
 * that applies must decrypt to its payload (checked by SHA-256) or be refused
 * with a typed AgeError whose code fits the expected failure; for a payload
 * failure, what was released before the error must match the payload hash too.
 */
interface Vector {
  name: string;
  expect: string;
  payload?: string;
  identities: string[];
  passphrases: string[];
  armored: boolean;
  body: Buffer;
}

function parseVector(name: string, bytes: Uint8Array): Vector {
  const all = Buffer.from(bytes);
  const split = all.indexOf("\n\n");
  const v: Vector = { name, expect: "", identities: [], passphrases: [], armored: false, body: Buffer.alloc(0) };
  let compressed = false;
  for (const line of all.subarray(0, split).toString("utf8").split("\n")) {
    const at = line.indexOf(": ");
    const [key, value] = [line.slice(0, at), line.slice(at + 2)];
    if (key === "expect") v.expect = value;
    else if (key === "payload") v.payload = value;
    else if (key === "identity") v.identities.push(value);
    else if (key === "passphrase") v.passphrases.push(value);
    else if (key === "armored") v.armored = value === "yes";
    else if (key === "compressed") compressed = value === "zlib";
  }
  const body = all.subarray(split + 2);
  v.body = compressed ? zlib.inflateSync(body) : body;
  return v;
}

/** Why a vector does not apply to Coffer, or null when it does. */
function skipReason(v: Vector): string | null {
  if (v.armored) return "ASCII armor (Coffer reads and writes binary age files only)";
  if (v.identities.length && v.identities.every((i) => i.startsWith("AGE-SECRET-KEY-PQ-"))) return "ML-KEM-768+X25519 hybrid identity (not implemented)";
  return null;
}

/** The codes each expected outcome may be refused with. */
const REFUSALS: Record<string, string[]> = {
  // A passphrase for a file with no scrypt stanza (scrypt_uppercase's "Scrypt" is not one) is KEY_REQUIRED: Coffer says which kind of key it needs.
  "no match": ["KEY_MISMATCH", "KEY_REQUIRED"],
  "HMAC failure": ["ARCHIVE_TAMPERED"],
  "header failure": ["ARCHIVE_TAMPERED", "AGE_UNSUPPORTED"],
  "payload failure": ["ARCHIVE_TAMPERED"],
};

async function decrypt(v: Vector, keys: AgeKeys): Promise<{ released: string; error: unknown }> {
  const hash = crypto.createHash("sha256");
  let error: unknown = null;
  try {
    await pipeline(
      Readable.from([v.body]),
      createDecryptStream(keys),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          cb();
        },
      }),
    );
  } catch (err) {
    error = err;
  }
  return { released: hash.digest("hex"), error };
}

/** Every identity and passphrase the vector gives, as age tries them: the first that opens the file wins. */
async function run(v: Vector): Promise<{ released: string; error: unknown }> {
  if (v.passphrases.length === 0) {
    try {
      return await decrypt(v, { identities: v.identities.length ? parseIdentities(v.identities.join("\n")) : [] });
    } catch (err) {
      return { released: crypto.createHash("sha256").digest("hex"), error: err };
    }
  }
  let last: { released: string; error: unknown } | null = null;
  for (const passphrase of v.passphrases) {
    last = await decrypt(v, { passphrase });
    if (!(last.error instanceof AgeError && last.error.code === "KEY_MISMATCH")) return last;
  }
  return last!;
}

const all = Object.entries(vectors as unknown as Record<string, Uint8Array>).map(([name, bytes]) => parseVector(name, bytes));
const applicable = all.filter((v) => skipReason(v) === null);

describe("C2SP age test vectors (cctv-age)", () => {
  it("are all read: the package holds them, and the skipped ones are only the formats Coffer does not implement", () => {
    expect(all.length).toBeGreaterThan(100);
    const skipped = new Map<string, number>();
    for (const v of all) {
      const why = skipReason(v);
      if (why) skipped.set(why, (skipped.get(why) ?? 0) + 1);
    }
    console.info(`age vectors: ${all.length} in cctv-age, ${applicable.length} apply; skipped: ${[...skipped].map(([w, n]) => `${n} ${w}`).join(", ")}`);
    expect(applicable.length).toBeGreaterThanOrEqual(90);
  });

  it.each(applicable.map((v) => [v.name, v.expect, v] as const))("%s (%s)", async (_name, expected, v) => {
    const { released, error } = await run(v);
    if (expected === "success") {
      expect(error).toBeNull();
      expect(released).toBe(v.payload);
      return;
    }
    expect(error, "refused").toBeInstanceOf(AgeError);
    expect(REFUSALS[expected], `${(error as AgeError).code}: ${(error as Error).message}`).toContain((error as AgeError).code);
    if (v.payload) expect(released).toBe(v.payload);
  });
});

describe("identity files with identity types Coffer does not implement", () => {
  const x25519 = "AGE-SECRET-KEY-1EGTZVFFV20835NWYV6270LXYVK2VKNX2MMDKWYKLMGR48UAWX40Q2P2LM0";
  const plugin = "AGE-PLUGIN-YUBIKEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGP9XJ4RH";

  it("skip the unknown line and keep the X25519 identity", () => {
    expect(parseIdentities(`# created: 2026-12-01\n${plugin}\n${x25519}\n`)).toHaveLength(1);
  });

  it("are refused, typed and in words, when no usable identity remains; a line that is no identity at all is still refused", () => {
    expect(() => parseIdentities(`${plugin}\n`)).toThrow(expect.objectContaining({ code: "KEY_INVALID", message: expect.stringContaining("No identity Coffer can use") }));
    expect(() => parseIdentities(`${x25519}\nnot a key\n`)).toThrow(expect.objectContaining({ code: "KEY_INVALID", message: expect.stringContaining("That is not an age identity") }));
  });
});
