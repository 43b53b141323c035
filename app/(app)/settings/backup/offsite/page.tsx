import type { Metadata } from "next";
import { pageAdmin } from "@/app/_server/auth";
import { currentSettings } from "@/lib/settings/store";
import { lastRun } from "@/lib/backup/runs";
import { OffsiteForm } from "./_components/OffsiteForm";

export const metadata: Metadata = { title: "Offsite backups" };

export default async function OffsitePage() {
  const { inst } = await pageAdmin();
  const o = currentSettings(inst.paths.settings).backup.offsite;
  const last = lastRun(inst.db, "offsite");
  return (
    <OffsiteForm
      offsite={{
        enabled: o.enabled,
        endpoint: o.endpoint,
        region: o.region,
        bucket: o.bucket,
        prefix: o.prefix,
        path_style: o.path_style,
        access_key_id: o.access_key_id,
        hasSecret: !!o.secret_access_key,
        checksum_compat: o.checksum_compat,
        last: last && { status: last.status, at: last.finished_at ?? last.started_at, error: last.error, file: last.file },
      }}
    />
  );
}
