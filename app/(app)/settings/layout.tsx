import { pageAdmin } from "@/app/_server/auth";
import { NavLink } from "@/components/NavLink";

export default async function SettingsLayout({ children }: { children: React.ReactNode }) {
  await pageAdmin();
  return (
    <div className="grid gap-6 md:grid-cols-[11rem_1fr]">
      <nav aria-label="Settings" className="flex gap-1 overflow-x-auto md:flex-col">
        <NavLink href="/settings/backup">Backup</NavLink>
        <NavLink href="/settings/users">Users</NavLink>
        <NavLink href="/settings/health">Health</NavLink>
        <NavLink href="/settings/tokens">API tokens</NavLink>
        <NavLink href="/settings/audit">Audit log</NavLink>
      </nav>
      <div className="min-w-0">{children}</div>
    </div>
  );
}
