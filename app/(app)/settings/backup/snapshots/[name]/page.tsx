import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { pageUser } from "@/app/_server/auth";
import { PageTitle } from "@/components/ui";
import { isArchiveName } from "@/lib/backup/format/tables";
import { BackupDocuments } from "../../_components/BackupDocuments";

export const metadata: Metadata = { title: "Documents in an offsite snapshot" };

/** An offsite snapshot's documents: only its database is fetched to list them; each restored document is one object from the bucket. */
export default async function OffsiteSnapshotPage({ params }: { params: Promise<{ name: string }> }) {
  const { user } = await pageUser();
  const name = decodeURIComponent((await params).name);
  if (!isArchiveName(name)) notFound();
  return (
    <>
      <PageTitle
        description={`What the offsite snapshot ${name} holds, against now. ${user.role === "admin" ? "You see everyone's documents." : "You see only your own documents."} Restoring fetches only the chosen documents from the bucket and puts them beside today's; nothing else changes.`}
      >
        Documents in an offsite snapshot
      </PageTitle>
      <BackupDocuments spec={{ kind: "offsite", name }} />
    </>
  );
}
