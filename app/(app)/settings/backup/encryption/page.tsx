import type { Metadata } from "next";
import { pageAdmin } from "@/app/_server/auth";
import { currentSettings } from "@/lib/settings/store";
import { EncryptionForm } from "./_components/EncryptionForm";

export const metadata: Metadata = { title: "Backup encryption" };

export default async function EncryptionPage() {
  const { inst } = await pageAdmin();
  const { encryption } = currentSettings(inst.paths.settings).backup;
  return <EncryptionForm current={{ mode: encryption.mode, recipients: encryption.recipients }} />;
}
