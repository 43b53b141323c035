import Link from "next/link";
import { pageUser } from "@/app/_server/auth";
import { instanceName } from "@/lib/instance";
import { NavLink } from "@/components/NavLink";
import { SignOutButton } from "@/components/auth/SignOutButton";

export default async function AppLayout({ children }: { children: React.ReactNode }) {
  const { inst, user } = await pageUser();
  return (
    <div className="min-h-screen">
      <header className="border-b border-zinc-200 bg-white dark:border-zinc-800 dark:bg-zinc-900">
        <div className="mx-auto flex max-w-5xl flex-wrap items-center gap-x-4 gap-y-2 px-4 py-3">
          <Link href="/documents" className="font-semibold tracking-tight">
            {instanceName(inst)}
          </Link>
          <nav aria-label="Main" className="flex items-center gap-1">
            <NavLink href="/documents">Documents</NavLink>
            <NavLink href="/trash">Trash</NavLink>
            {user.role === "admin" && <NavLink href="/settings">Settings</NavLink>}
          </nav>
          <div className="ml-auto flex items-center gap-2 text-sm">
            <span className="text-zinc-600 dark:text-zinc-400" data-testid="whoami">
              {user.username}
              <span className="ml-1 rounded bg-zinc-100 px-1.5 py-0.5 text-xs dark:bg-zinc-800">{user.role}</span>
            </span>
            <SignOutButton />
          </div>
        </div>
      </header>
      <main className="mx-auto max-w-5xl px-4 py-8">{children}</main>
    </div>
  );
}
