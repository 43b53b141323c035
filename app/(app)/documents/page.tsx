import type { Metadata } from "next";
import { pageUser } from "@/app/_server/auth";
import { listDocuments } from "@/lib/vault/documents";
import { currentSettings } from "@/lib/settings/store";
import { PageTitle } from "@/components/ui";
import { Uploader } from "@/components/documents/Uploader";
import { DocumentTable } from "@/components/documents/DocumentTable";
import { formatBytes } from "@/lib/format";

export const metadata: Metadata = { title: "Documents" };

export default async function DocumentsPage() {
  const { inst, user } = await pageUser();
  const docs = listDocuments(inst, user);
  const settings = currentSettings(inst.paths.settings);
  const maxBytes = settings.documents.max_upload_bytes;
  return (
    <>
      <PageTitle
        description={
          user.role === "admin"
            ? "Every document in this instance. Members see only their own."
            : "Your documents. Only you and the instance's admins can see them."
        }
      >
        Documents
      </PageTitle>
      <Uploader maxBytes={maxBytes} maxLabel={formatBytes(maxBytes)} />
      <DocumentTable
        showOwner={user.role === "admin"}
        trashDays={settings.trash.retention_days}
        documents={docs.map((d) => ({
          id: d.id,
          name: d.name,
          size: d.size,
          contentType: d.content_type,
          createdAt: d.created_at,
          owner: d.owner,
        }))}
      />
    </>
  );
}
