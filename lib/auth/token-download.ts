import { Readable } from "node:stream";
import type { Instance } from "../instance";
import { AppError } from "../errors";
import { archiveEncryption } from "../backup/format/encryption";
import { openStoredBackup } from "../backup/local/repository";
import { AGE_MAGIC, looksLikeAge } from "../crypto/age";

/**
 * Why a token gets no archive while backups are unencrypted: a plain archive
 * holds keys/secret.key and the session epoch, from which anyone can mint an
 * admin's session, so a read token would be an admin credential. The tokens
 * page shows the same sentence before a token is made.
 */
export const TOKEN_DOWNLOAD_NEEDS_ENCRYPTION =
  "API tokens cannot download backups while backups are unencrypted: an unencrypted backup holds this Coffer's keys, so the token would be as good as an admin's password. Turn on encryption in Settings → Backup → Encryption first.";
const PLAIN_ARCHIVE =
  "API tokens download encrypted backups only, and this one was made before encryption was turned on. Download it signed in as an admin, or use a newer, encrypted backup.";

export const tokenMayDownload = (inst: Instance) => archiveEncryption(inst) !== null;

/**
 * A stored backup for an API token: refused (403) while encryption is off,
 * and refused when the archive is not age ciphertext, decided by its first
 * bytes, not its name; so an old plain archive stays out of reach after
 * encryption is turned on.
 */
export async function openBackupForToken(inst: Instance, name: string): Promise<Readable> {
  if (!tokenMayDownload(inst)) throw new AppError(403, "TOKEN_NEEDS_ENCRYPTION", TOKEN_DOWNLOAD_NEEDS_ENCRYPTION);
  const source = await openStoredBackup(inst, name);
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let bytes = 0;
  try {
    while (bytes < AGE_MAGIC.length) {
      const { value, done } = await it.next();
      if (done) break;
      head.push(value);
      bytes += value.length;
    }
  } catch (err) {
    source.destroy();
    throw err;
  }
  const first = Buffer.concat(head);
  if (!looksLikeAge(first)) {
    source.destroy();
    throw new AppError(403, "TOKEN_PLAIN_ARCHIVE", PLAIN_ARCHIVE);
  }
  return Readable.from(
    (async function* () {
      try {
        yield first;
        for (;;) {
          const { value, done } = await it.next();
          if (done) return;
          yield value;
        }
      } finally {
        source.destroy(); // the client left mid-download: close the file or the remote read
      }
    })(),
    { objectMode: false },
  );
}
