import type { Metadata } from "next";
import { pageUser } from "@/app/_server/auth";
import { PageTitle } from "@/components/ui";
import { BackupDocuments } from "../_components/BackupDocuments";

export const metadata: Metadata = { title: "Documents at a point in time" };

/** The documents the instance held at ?at= (a second of the continuous window): restore some of them without rolling the instance back. */
export default async function PointInTimeDocumentsPage({ searchParams }: { searchParams: Promise<{ at?: string | string[] }> }) {
  const { user } = await pageUser();
  const raw = (await searchParams).at;
  const at = typeof raw === "string" ? raw.slice(0, 64) : "";
  // In UTC, said so: the server does not know the reader's zone.
  const when = Number.isNaN(Date.parse(at)) ? at : `${new Date(at).toISOString().slice(0, 19).replace("T", " ")} UTC`;
  return (
    <>
      <PageTitle
        description={`What this instance held at ${when || "(no time given)"}, from the continuous replica, against now. ${user.role === "admin" ? "You see everyone's documents." : "You see only your own documents."} Restoring brings chosen documents back beside today's; nothing else changes.`}
      >
        Documents at a point in time
      </PageTitle>
      <BackupDocuments spec={{ kind: "point_in_time", at }} />
    </>
  );
}
