import type { Instance } from "../../instance";
import { currentSettings } from "../../settings/store";
import type { Settings } from "../../settings/schema";
import { decryptSecret, isEncryptedSecret } from "../../settings/secrets";
import { parseRecipient, type AgeEncryptTo } from "../../crypto/age";

/** What a run's archive was encrypted with, as recorded in backup_runs (public information only). */
export type RunEncryption = { mode: "recipients"; recipients: string[] } | { mode: "passphrase" } | null;

/**
 * What new archives are encrypted for, from settings.yaml: the recipients,
 * or the passphrase (stored enc:v1:, decrypted here with keys/config.key;
 * one typed in clear by hand is used as it is). Null when encryption is off.
 */
export function archiveEncryption(inst: Instance): ArchiveEncryption | null {
  return encryptionFrom(inst, currentSettings(inst.paths.settings).backup.encryption);
}

/** What a new archive is encrypted for: the keys to encrypt to, and what the run history records of them. */
export type ArchiveEncryption = { to: AgeEncryptTo; record: RunEncryption };

/** archiveEncryption from settings already read (a job reads settings.yaml once). */
export function encryptionFrom(inst: Instance, e: Settings["backup"]["encryption"]): ArchiveEncryption | null {
  if (e.mode === "recipients") return { to: { recipients: e.recipients }, record: { mode: "recipients", recipients: e.recipients } };
  if (e.mode === "passphrase" && e.passphrase) {
    const passphrase = isEncryptedSecret(e.passphrase) ? decryptSecret(inst.configKey, e.passphrase) : e.passphrase;
    return { to: { passphrase }, record: { mode: "passphrase" } };
  }
  return null;
}

/** Recipients in settings.yaml that do not parse (a typo in a hand edit, a bad checksum). */
export function badRecipients(inst: Instance): string[] {
  return currentSettings(inst.paths.settings).backup.encryption.recipients.filter((r) => parseRecipient(r) === null);
}
