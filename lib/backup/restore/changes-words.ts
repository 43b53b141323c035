/**
 * What a staged restore would change against the instance now (computed by
 * ./changes.ts, shown by the restore preview and `coffer restore`), and the
 * plain words for it. Pure: the browser imports this file.
 */

/** How many, and the first few names (at most CHANGE_SAMPLE). */
export interface NameSample {
  count: number;
  names: string[];
}

export const CHANGE_SAMPLE = 20;

export interface RestoreChanges {
  /** When the instance was read for the comparison (the staging time). */
  compared_at: string;
  documents: {
    /** Live now, and not live in the backup (not there, or in its trash): gone after the restore. */
    disappear: NameSample;
    /** Live in the backup, and not live now (erased, or in the trash): back after the restore. */
    come_back: NameSample;
  };
  users: {
    /** Accounts the backup has and this instance does not (by username). */
    added: NameSample;
    /** Accounts this instance has and the backup does not. */
    removed: NameSample;
  };
  settings: {
    differ: boolean;
    /** The settings that differ, as `section` or `section.part` (e.g. backup.schedule, trash.retention_days). */
    sections: string[];
  };
  /** The backup's keys are not this instance's (another installation, or a point before a restore). */
  keys_differ: boolean;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "a.pdf, b.pdf and 3 more" */
export function sampleText(s: NameSample): string {
  const more = s.count - s.names.length;
  const shown = s.names.join(", ");
  return more > 0 ? `${shown} and ${more} more` : shown;
}

/** Each change in a sentence; one sentence saying nothing differs when nothing does. */
export function describeChanges(c: RestoreChanges): string[] {
  const out: string[] = [];
  const d = c.documents;
  if (d.disappear.count) out.push(`${plural(d.disappear.count, "document")} here now would disappear (added since the backup, or in its trash): ${sampleText(d.disappear)}.`);
  if (d.come_back.count) out.push(`${plural(d.come_back.count, "document")} would come back (deleted since, or in the trash now): ${sampleText(d.come_back)}.`);
  if (c.users.added.count) out.push(`${plural(c.users.added.count, "account")} would come back or be added: ${sampleText(c.users.added)}.`);
  if (c.users.removed.count) out.push(`${plural(c.users.removed.count, "account")} here now would be removed: ${sampleText(c.users.removed)}.`);
  if (c.settings.differ) out.push(`Settings differ from today's in ${c.settings.sections.join(", ")}: the backup's replace them.`);
  if (c.keys_differ) out.push("The backup's keys are not this instance's: its sessions and encrypted settings come with it.");
  if (!out.length) out.push("Documents, accounts and settings are the same as now.");
  return out;
}
