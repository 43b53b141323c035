import type { Metadata } from "next";
import { pageAdmin } from "@/app/_server/auth";
import { currentSettings } from "@/lib/settings/store";
import { decryptSecret } from "@/lib/settings/secrets";
import { maskWebhook } from "@/lib/backup/alerts";
import { ProofForm } from "./_components/ProofForm";
import { AlertsForm } from "./_components/AlertsForm";

export const metadata: Metadata = { title: "Backup proof and alerts" };

export default async function ProofPage() {
  const { inst } = await pageAdmin();
  const job = currentSettings(inst.paths.settings).backup;
  let webhookMasked: string | null = null;
  if (job.notify.webhook_url) {
    try {
      webhookMasked = maskWebhook(decryptSecret(inst.configKey, job.notify.webhook_url));
    } catch {
      webhookMasked = "cannot be decrypted";
    }
  }
  return (
    <div className="space-y-8">
      <section>
        <p className="mb-3 text-sm text-zinc-600 dark:text-zinc-400">A backup is only as good as the last time it was read back. Coffer re-reads stored bytes a slice at a time and, now and then, restores the newest backup into a scratch directory.</p>
        <ProofForm proof={job.proof} />
      </section>
      <section>
        <h2 className="mb-3 text-lg font-semibold">Alerts</h2>
        <AlertsForm webhookMasked={webhookMasked} />
      </section>
    </div>
  );
}
