import type { Metadata } from "next";
import { pageUser } from "@/app/_server/auth";
import { PageTitle } from "@/components/ui";
import { isArchiveName } from "@/lib/backup/format/tables";
import { notFound } from "next/navigation";
import { BackupDocuments } from "../../_components/BackupDocuments";

export const metadata: Metadata = { title: "Documents in a backup" };

/** A stored backup's documents: browse, compare with now, restore chosen ones (the client component calls ./actions.ts, which authorize themselves). */
export default async function StoredBackupPage({ params }: { params: Promise<{ name: string }> }) {
  const { user } = await pageUser();
  const name = decodeURIComponent((await params).name);
  if (!isArchiveName(name)) notFound();
  return (
    <>
      <PageTitle description={`What ${name} holds, against now. ${user.role === "admin" ? "You see everyone's documents." : "You see only your own documents."} Restoring brings chosen documents back beside today's; nothing else changes.`}>
        Documents in a backup
      </PageTitle>
      <BackupDocuments spec={{ kind: "stored", name }} />
    </>
  );
}
