/** A key made for the browser, shown once: the identity (secret) and its recipient (the public half Coffer keeps). */
export interface NewKey {
  identity: string;
  recipient: string;
  instance: string;
  created_at: string;
}

/** The recovery kit is itself an age identity file: comment lines, then the key. */
export function recoveryKit(k: NewKey): string {
  return [
    "# Coffer recovery kit. Keep this file safe, and somewhere other than the server.",
    "# Anyone who has it can read your backups; without it, nobody can (Coffer included).",
    "#",
    `# Instance: ${k.instance}`,
    `# Created:  ${k.created_at}`,
    `# Public key (recipient): ${k.recipient}`,
    "#",
    "# Restore on a new server: open /setup, choose Restore from backup, pick the",
    "# backup (coffer_….tar.gz.age) and give this file as its key.",
    "#",
    "# Decrypt without Coffer, with age (https://age-encryption.org):",
    "#   age -d -i coffer-recovery-kit.txt coffer_full_YYYYMMDD_HHMMSSZ.tar.gz.age > backup.tar.gz",
    "#   tar tzf backup.tar.gz",
    k.identity,
    "",
  ].join("\n");
}

export function downloadText(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}

/** The admin shows they kept the key by typing its last six characters. */
export const keyProven = (k: NewKey | null, typed: string) => k !== null && typed.trim().toUpperCase() === k.identity.slice(-6);
