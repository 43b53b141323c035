import { redirect } from "next/navigation";
import { pageAdmin } from "@/app/_server/auth";

export default async function SettingsIndex() {
  await pageAdmin();
  redirect("/settings/backup");
}
