import crypto from "node:crypto";
import { promisify } from "node:util";

const scrypt = promisify(crypto.scrypt) as (
  pw: string,
  salt: Buffer,
  keylen: number,
  opts: crypto.ScryptOptions,
) => Promise<Buffer>;

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;

export const MIN_PASSWORD_LENGTH = 10;

/** scrypt$N$r$p$salt$hash, salt and hash base64; parameters travel with the hash. */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const hash = await scrypt(password.normalize("NFC"), salt, KEYLEN, { N, r: R, p: P });
  return ["scrypt", N, R, P, salt.toString("base64"), hash.toString("base64")].join("$");
}

/**
 * What a stored hash may ask of scrypt. The parameters travel with the hash,
 * and a restored database is outside input: without a bound, one row could
 * make every sign-in allocate gigabytes (memory is 128·N·r bytes) or spin
 * for minutes (p). Coffer writes N=16384, r=8, p=1 (16 MiB); this allows up
 * to twice that memory and four times that work.
 */
const MAX_SCRYPT_MEMORY = 128 * N * R * 2;
const MAX_SCRYPT_P = 4;

/** Why a stored hash is refused without running scrypt, or null when its parameters are within bounds. */
export function scryptParamsProblem(n: number, r: number, p: number, saltBytes: number, keyBytes: number): string | null {
  if (![n, r, p].every(Number.isSafeInteger)) return "its N, r or p is not a whole number";
  if (n < 2 || (n & (n - 1)) !== 0) return `N=${n} is not a power of two`;
  if (r < 1 || p < 1 || p > MAX_SCRYPT_P) return `r=${r}, p=${p} is outside 1..16, 1..${MAX_SCRYPT_P}`;
  if (r > 16 || 128 * n * r > MAX_SCRYPT_MEMORY) return `N=${n}, r=${r} would take ${Math.round((128 * n * r) / 2 ** 20)} MiB (at most ${MAX_SCRYPT_MEMORY / 2 ** 20} MiB)`;
  if (saltBytes < 8 || saltBytes > 64 || keyBytes < 16 || keyBytes > 64) return `its salt (${saltBytes} bytes) or hash (${keyBytes} bytes) has an unusual length`;
  return null;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [n, r, p] = parts.slice(1, 4).map((x) => (/^\d{1,10}$/.test(x) ? Number(x) : NaN));
  const salt = Buffer.from(parts[4], "base64");
  const expected = Buffer.from(parts[5], "base64");
  const problem = scryptParamsProblem(n, r, p, salt.length, expected.length);
  if (problem) {
    console.warn(`Coffer: a stored password hash was refused without checking it: ${problem}. An admin can set a new password for that account in Settings → Users.`);
    return false;
  }
  const actual = await scrypt(password.normalize("NFC"), salt, expected.length, { N: n, r, p, maxmem: 2 * MAX_SCRYPT_MEMORY });
  return crypto.timingSafeEqual(actual, expected);
}

/** Hash of a password nobody has, so unknown usernames take as long as known ones. */
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(): Promise<string> {
  return (dummyHash ??= hashPassword(crypto.randomBytes(16).toString("hex")));
}
