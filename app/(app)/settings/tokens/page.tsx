import type { Metadata } from "next";
import { pageAdmin } from "@/app/_server/auth";
import { PageTitle, Card, Table, Alert } from "@/components/ui";
import { CreateTokenForm, RevokeTokenButton } from "./_components/TokensForm";
import { listTokens, TOKEN_SCOPES } from "@/lib/auth/tokens";
import { tokenMayDownload, TOKEN_DOWNLOAD_NEEDS_ENCRYPTION } from "@/lib/auth/token-download";
import { formatDateTime } from "@/lib/format";

export const metadata: Metadata = { title: "API tokens" };

export default async function TokensPage() {
  const { inst } = await pageAdmin();
  const tokens = listTokens(inst.db);
  const now = Date.now();
  return (
    <>
      <PageTitle description="For scripts on other machines: pull last night's backup, run one, scrape metrics. Each token is shown once, kept only as a hash, and every use is in the audit log.">
        API tokens
      </PageTitle>
      <div className="space-y-6">
        {!tokenMayDownload(inst) && (
          <div data-testid="token-encryption-notice">
            <Alert tone="warn">
              {TOKEN_DOWNLOAD_NEEDS_ENCRYPTION} <a className="underline" href="/settings/backup/encryption">Turn on encryption</a>
            </Alert>
          </div>
        )}
        <Card>
          <CreateTokenForm scopes={{ ...TOKEN_SCOPES }} />
        </Card>
        {tokens.length ? (
          <Table
            head={
              <>
                <th className="px-4 py-2">Name</th>
                <th className="px-4 py-2">May</th>
                <th className="px-4 py-2">Last used</th>
                <th className="px-4 py-2">Expires</th>
                <th className="px-4 py-2" />
              </>
            }
          >
            {tokens.map((t) => {
              const expired = t.expires_at !== null && Date.parse(t.expires_at) <= now;
              return (
                <tr key={t.id} data-testid="token-row">
                  <td className="px-4 py-2 font-medium">{t.name}</td>
                  <td className="px-4 py-2 font-mono text-xs">{t.scopes.join(" ")}</td>
                  <td className="px-4 py-2">{t.last_used_at ? formatDateTime(t.last_used_at) : "Never"}</td>
                  <td className="px-4 py-2">{t.revoked_at ? `Revoked ${formatDateTime(t.revoked_at)}` : t.expires_at ? `${expired ? "Expired" : ""} ${formatDateTime(t.expires_at)}`.trim() : "Never"}</td>
                  <td className="px-4 py-2 text-right">{!t.revoked_at && !expired && <RevokeTokenButton id={t.id} name={t.name} />}</td>
                </tr>
              );
            })}
          </Table>
        ) : (
          <p className="text-sm text-zinc-600 dark:text-zinc-400">No API tokens yet.</p>
        )}
      </div>
    </>
  );
}
