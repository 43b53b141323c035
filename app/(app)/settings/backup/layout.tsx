import { pageAdmin } from "@/app/_server/auth";
import { settingsProblem } from "@/lib/settings/store";
import { NavLink } from "@/components/NavLink";
import { PageTitle, Alert } from "@/components/ui";

/** Settings → Backup: one page per concern, each a thin shell with its own form and actions. */
export default async function BackupLayout({ children }: { children: React.ReactNode }) {
  const { inst } = await pageAdmin();
  const problem = settingsProblem(inst.paths.settings);
  return (
    <>
      <PageTitle description="A backup holds everything this instance knows: the database, settings, keys and every document. Keep one somewhere else than this server.">
        Backup
      </PageTitle>
      <nav aria-label="Backup" className="mb-6 flex flex-wrap gap-1 border-b border-zinc-200 pb-2 dark:border-zinc-800">
        <NavLink href="/settings/backup" exact>
          Backups
        </NavLink>
        <NavLink href="/settings/backup/schedule">Schedule</NavLink>
        <NavLink href="/settings/backup/encryption">Encryption</NavLink>
        <NavLink href="/settings/backup/offsite">Offsite</NavLink>
        <NavLink href="/settings/backup/proof">Proof and alerts</NavLink>
        <NavLink href="/settings/backup/history">History</NavLink>
      </nav>
      {problem && (
        <div className="mb-4">
          <Alert tone="warn">settings.yaml has an error, so the previous settings are still in force: {problem}</Alert>
        </div>
      )}
      {children}
    </>
  );
}
