import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { execFileSync } from "node:child_process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, describe, expect, it } from "vitest";
import { AGE_CHUNK_BYTES, AGE_SEALED_CHUNK_BYTES, AgeError, createChunkRunDecryptStream, createDecryptStream, createEncryptStream, openAgePayload, generateKey, parseIdentities, parseRecipient, recipientOf, x25519PrivateKey, x25519PublicKey, x25519PublicOf, type AgeEncryptTo, type AgeKeys } from "@/lib/crypto/age";
import { tempDir } from "../support/instance";

const dir = tempDir("coffer-age-");
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function encrypt(data: Buffer, to: AgeEncryptTo): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([data]), await createEncryptStream(to), async function* (src) {
    for await (const c of src) out.push(c as Buffer);
  });
  return Buffer.concat(out);
}

async function decrypt(data: Buffer | Buffer[], keys: AgeKeys): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(Array.isArray(data) ? data : [data]), createDecryptStream(keys), async function* (src) {
    for await (const c of src) out.push(c as Buffer);
  });
  return Buffer.concat(out);
}

const sha = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e) => (e instanceof AgeError ? e.code : `untyped: ${(e as Error).message}`));

describe("age keys", () => {
  it("generates an identity and recipient that round-trip through bech32, and age-keygen agrees on the recipient", () => {
    const k = generateKey();
    expect(k.identity).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
    expect(k.recipient).toMatch(/^age1[0-9a-z]{58}$/);
    expect(parseRecipient(k.recipient)).toHaveLength(32);
    expect(recipientOf(parseIdentities(k.identity)[0])).toBe(k.recipient);
    const file = path.join(dir, "k.txt");
    fs.writeFileSync(file, `# a comment\n${k.identity}\n`);
    expect(execFileSync("age-keygen", ["-y", file]).toString().trim()).toBe(k.recipient);
  });

  // RFC 7748 section 6.1: every way Coffer imports or exports an X25519 key, checked against
  // published values on whatever Node runs the suite (Node 24.22 refused the old JWK import).
  it("imports and exports X25519 keys on this Node as RFC 7748 says (private, public, shared secret)", () => {
    const alice = Buffer.from("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "hex");
    const alicePub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
    const bob = Buffer.from("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "hex");
    const bobPub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
    expect(x25519PublicOf(alice).toString("hex")).toBe(alicePub);
    expect(x25519PublicOf(bob).toString("hex")).toBe(bobPub);
    const shared = crypto.diffieHellman({ privateKey: x25519PrivateKey(alice), publicKey: x25519PublicKey(Buffer.from(bobPub, "hex")) });
    expect(shared.toString("hex")).toBe("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    // The key objects are what Node itself would make of the raw bytes.
    expect(x25519PrivateKey(alice).export({ format: "jwk" })).toMatchObject({ kty: "OKP", crv: "X25519", d: alice.toString("base64url"), x: Buffer.from(alicePub, "hex").toString("base64url") });
    // Through the bech32 forms a user sees.
    expect(parseRecipient(recipientOf(alice))!.toString("hex")).toBe(alicePub);
    expect(() => x25519PrivateKey(Buffer.alloc(31))).toThrow(expect.objectContaining({ code: "KEY_INVALID" }));
    expect(() => x25519PublicKey(Buffer.alloc(33))).toThrow(expect.objectContaining({ code: "KEY_INVALID" }));
  });

  it("refuses malformed keys with KEY_INVALID", () => {
    const k = generateKey();
    for (const bad of ["", "AGE-SECRET-KEY-1", k.identity.slice(0, -1) + (k.identity.endsWith("Q") ? "P" : "Q"), k.recipient, "hello"]) {
      expect(() => parseIdentities(bad), bad).toThrow(expect.objectContaining({ code: "KEY_INVALID" }));
    }
    expect(parseRecipient(k.identity)).toBeNull();
    // A last character swapped for another (the checksum must catch it): not "x" blindly, which is the right one once in 32 keys.
    expect(parseRecipient(k.recipient.slice(0, -1) + (k.recipient.endsWith("x") ? "y" : "x"))).toBeNull();
  });
});

describe("age files", () => {
  const sizes = [0, 1, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 3 * 64 * 1024, 1_000_003];

  it.each(sizes)("%i bytes: Coffer encrypts, Debian's age -d decrypts to the same bytes; age -r encrypts, Coffer decrypts", async (size) => {
    const data = crypto.randomBytes(size);
    const k = generateKey();
    const other = generateKey();
    const keyFile = path.join(dir, `id-${size}.txt`);
    fs.writeFileSync(keyFile, k.identity + "\n");
    const enc = await encrypt(data, { recipients: [other.recipient, k.recipient] });
    const encFile = path.join(dir, `c-${size}.age`);
    fs.writeFileSync(encFile, enc);
    expect(sha(execFileSync("age", ["-d", "-i", keyFile, encFile], { maxBuffer: 64 * 1024 * 1024 }))).toBe(sha(data));
    const plainFile = path.join(dir, `p-${size}.bin`);
    fs.writeFileSync(plainFile, data);
    const theirs = execFileSync("age", ["-r", k.recipient, plainFile], { maxBuffer: 64 * 1024 * 1024 });
    expect(sha(await decrypt(theirs, { identities: parseIdentities(k.identity) }))).toBe(sha(data));
  });

  it("decrypts when fed one byte at a time, and with a passphrase", async () => {
    const data = crypto.randomBytes(70_000);
    const k = generateKey();
    const enc = await encrypt(data, { recipients: [k.recipient] });
    const bytes = [...enc].map((b) => Buffer.from([b]));
    expect(sha(await decrypt(bytes, { identities: parseIdentities(k.identity) }))).toBe(sha(data));
    const withPass = await encrypt(data, { passphrase: "correct horse battery staple", logN: 10 });
    expect(withPass.toString("latin1", 0, 200)).toContain("-> scrypt ");
    expect(sha(await decrypt(withPass, { passphrase: "correct horse battery staple" }))).toBe(sha(data));
  });

  it("uses age's default scrypt work factor (2^18) unless told otherwise", async () => {
    const enc = await encrypt(Buffer.from("x"), { passphrase: "p" });
    expect(enc.toString("latin1").split("\n")[1]).toMatch(/^-> scrypt \S{22} 18$/);
  });

  it("names each bad input: no key, the wrong key, the wrong passphrase, truncation, a flipped bit anywhere", async () => {
    const data = crypto.randomBytes(200_000);
    const k = generateKey();
    const ids = { identities: parseIdentities(k.identity) };
    const enc = await encrypt(data, { recipients: [k.recipient] });
    const headerEnd = enc.indexOf("\n---") + 1;
    const macLineEnd = enc.indexOf(0x0a, headerEnd) + 1;
    expect(await codeOf(decrypt(enc, {}))).toBe("KEY_REQUIRED");
    expect(await codeOf(decrypt(enc, { identities: parseIdentities(generateKey().identity) }))).toBe("KEY_MISMATCH");
    expect(await codeOf(decrypt(enc, { passphrase: "nope" }))).toBe("KEY_REQUIRED");
    const pass = await encrypt(data, { passphrase: "right", logN: 10 });
    expect(await codeOf(decrypt(pass, { passphrase: "wrong" }))).toBe("KEY_MISMATCH");
    expect(await codeOf(decrypt(pass, ids))).toBe("KEY_MISMATCH");
    // Truncated: inside the header, right after it, mid-payload, at a chunk boundary, one byte short.
    for (const at of [10, macLineEnd, macLineEnd + 16, macLineEnd + 16 + 65536 + 16, enc.length - 1]) {
      expect(await codeOf(decrypt(enc.subarray(0, at), ids)), `cut at ${at}`).toBe("ARCHIVE_TAMPERED");
    }
    // Appended data after the final chunk.
    expect(await codeOf(decrypt(Buffer.concat([enc, Buffer.from("x")]), ids))).toBe("ARCHIVE_TAMPERED");
    // A flipped bit in the MAC, the nonce, each payload chunk and the last byte.
    for (const at of [headerEnd + 5, macLineEnd + 3, macLineEnd + 16 + 100, macLineEnd + 16 + 65536 + 16 + 7, enc.length - 1]) {
      const bad = Buffer.from(enc);
      bad[at] ^= 0x01;
      expect(await codeOf(decrypt(bad, ids)), `bit flipped at ${at}`).toBe("ARCHIVE_TAMPERED");
    }
    // In the version line: not an age file of a version we know.
    const v = Buffer.from(enc);
    v[3] ^= 0x01;
    expect(await codeOf(decrypt(v, ids))).toBe("ARCHIVE_TAMPERED");
    // In the recipient stanza: the key can no longer open it (indistinguishable from another key's file).
    const s = Buffer.from(enc);
    s[enc.indexOf("-> X25519 ") + 12] ^= 0x01;
    expect(["KEY_MISMATCH", "ARCHIVE_TAMPERED"]).toContain(await codeOf(decrypt(s, ids)));
  });
});

describe("reading chunks from the middle of a file (seekable archives)", () => {
  const run = async (enc: Buffer, key: Buffer, start: number, first: number, end?: number) => {
    const out: Buffer[] = [];
    await pipeline(Readable.from([enc.subarray(start, end)]), createChunkRunDecryptStream(key, first), async function* (src) {
      for await (const c of src) out.push(c as Buffer);
    });
    return Buffer.concat(out);
  };

  it("decrypts chunks 3 to 5, or 3 to the end, with the payload key from the header; a run from another place or another file fails", async () => {
    const data = crypto.randomBytes(10 * AGE_CHUNK_BYTES + 123);
    const k = generateKey();
    const keys = { identities: parseIdentities(k.identity) };
    const enc = await encrypt(data, { recipients: [k.recipient] });
    const { payloadKey, payloadStart } = await openAgePayload(enc.subarray(0, 64 * 1024), keys);
    const at = (chunk: number) => payloadStart + chunk * AGE_SEALED_CHUNK_BYTES;
    expect((await run(enc, payloadKey, at(3), 3, at(6))).equals(data.subarray(3 * AGE_CHUNK_BYTES, 6 * AGE_CHUNK_BYTES))).toBe(true);
    expect((await run(enc, payloadKey, at(3), 3)).equals(data.subarray(3 * AGE_CHUNK_BYTES))).toBe(true);
    expect((await run(enc, payloadKey, at(10), 10)).equals(data.subarray(10 * AGE_CHUNK_BYTES))).toBe(true); // the short final chunk alone
    expect(await codeOf(run(enc, payloadKey, at(4), 3, at(6)))).toBe("ARCHIVE_TAMPERED"); // chunk 4 is not chunk 3
    expect(await codeOf(run(enc, payloadKey, at(3) + 16, 3, at(6)))).toBe("ARCHIVE_TAMPERED"); // not on a chunk boundary
    const other = await encrypt(data, { recipients: [k.recipient] });
    expect(await codeOf(run(other, payloadKey, at(3), 3, at(6)))).toBe("ARCHIVE_TAMPERED"); // the same key, another file's nonce
    expect(await codeOf(openAgePayload(enc.subarray(0, 64 * 1024), { identities: parseIdentities(generateKey().identity) }))).toBe("KEY_MISMATCH");
  });
});

describe("encryptedSize", () => {
  it("says exactly how long the age file will be, at every chunk boundary", async () => {
    const enc = createEncryptStream;
    for (const n of [0, 1, 65535, 65536, 65537, 3 * 65536, 200_000]) {
      for (const to of [{ recipients: [generateKey().recipient, generateKey().recipient] }, { passphrase: "x", logN: 10 }]) {
        const e = await enc(to);
        const chunks: Buffer[] = [];
        e.on("data", (c: Buffer) => chunks.push(c));
        const done = new Promise((r) => e.on("end", r));
        e.end(Buffer.alloc(n, 7));
        await done;
        expect(Buffer.concat(chunks).length, `${n} bytes`).toBe(e.encryptedSize(n));
      }
    }
  });
});
