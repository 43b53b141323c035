import crypto from "node:crypto";

const PREFIX = "enc:v1:";

/** AES-256-GCM with a fresh 12-byte IV; stored as enc:v1:base64(iv | tag | ciphertext). */
export function encryptSecret(key: Buffer, plaintext: string): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv("aes-256-gcm", key, iv);
  const ct = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), ct]).toString("base64");
}

export function isEncryptedSecret(value: unknown): value is string {
  return typeof value === "string" && value.startsWith(PREFIX);
}

export class SecretDecryptError extends Error {}

export function decryptSecret(key: Buffer, stored: string): string {
  if (!isEncryptedSecret(stored)) throw new SecretDecryptError("value is not an encrypted secret");
  const raw = Buffer.from(stored.slice(PREFIX.length), "base64");
  if (raw.length < 28) throw new SecretDecryptError("encrypted secret is too short");
  const decipher = crypto.createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  try {
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  } catch {
    throw new SecretDecryptError("encrypted secret cannot be decrypted with keys/config.key");
  }
}
