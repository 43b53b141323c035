import type { Metadata } from "next";
import { pageAdmin } from "@/app/_server/auth";
import { listUsers } from "@/lib/auth/users";
import { PageTitle } from "@/components/ui";
import { AddMemberForm, UserRowActions } from "./_components/UserForms";
import { formatBytes } from "@/lib/format";

export const metadata: Metadata = { title: "Users" };

export default async function UsersPage() {
  const { inst, user: me } = await pageAdmin();
  const users = listUsers(inst);
  return (
    <>
      <PageTitle description="Members can upload and see their own documents. Admins see everything and manage backups.">
        Users
      </PageTitle>
      <AddMemberForm />
      <ul className="mt-6 divide-y divide-zinc-200 rounded-lg border border-zinc-200 bg-white dark:divide-zinc-800 dark:border-zinc-800 dark:bg-zinc-900">
        {users.map((u) => (
          <li key={u.id} className="flex flex-wrap items-center gap-3 px-4 py-3" data-testid={`user-${u.username}`}>
            <div className="min-w-0 flex-1">
              <p className="font-medium">
                {u.username}
                {u.id === me.id && <span className="ml-1 text-xs text-zinc-500">(you)</span>}
              </p>
              <p className="text-xs text-zinc-600 dark:text-zinc-400">
                {u.role} · {u.documents} document{u.documents === 1 ? "" : "s"} · {formatBytes(u.used_bytes)} · since{" "}
                {u.created_at.slice(0, 10)}
              </p>
            </div>
            {u.role === "member" && <UserRowActions userId={u.id} username={u.username} documents={u.documents} />}
          </li>
        ))}
      </ul>
    </>
  );
}
