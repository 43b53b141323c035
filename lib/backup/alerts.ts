import type { Instance } from "../instance";
import { instanceName } from "../instance";
import { currentSettings } from "../settings/store";
import { decryptSecret } from "../settings/secrets";

export interface AlertPayload {
  instance: string;
  event: "backup.failed" | "backup.stale" | "offsite.failed" | "verify.failed" | "drill.failed" | "drill.overdue" | "continuous.disk_full" | "test";
  time: string;
  error: string | null;
  last_success: string | null;
}

export interface SendOptions {
  /** Waits between tries; the number of entries + 1 is the number of tries. */
  backoffMs?: number[];
  timeoutMs?: number;
}

/**
 * A webhook URL is a secret: credentials in it (user:pass@), and often a
 * token in its path or query (Slack, Discord, ntfy). Credentials travel as
 * an Authorization header (fetch refuses URLs that carry them, and says the
 * URL in the error); every message that might contain the URL goes through
 * redactWebhook before anyone sees it.
 */
export function webhookRequest(url: string): { target: string; headers: Record<string, string> } {
  const u = new URL(url);
  const headers: Record<string, string> = {};
  if (u.username || u.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}`;
    u.username = "";
    u.password = "";
  }
  return { target: u.toString(), headers };
}

/** What a person may see of a webhook URL: scheme and host. */
export function maskWebhook(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return "(not a valid URL)";
  }
}

/** `text` with every secret part of `url` (the whole URL, its credentials, path and query) replaced. */
export function redactWebhook(text: string, url: string): string {
  let out = text;
  let u: URL | null = null;
  try {
    u = new URL(url);
  } catch {
    /* only the raw string to hide */
  }
  const secrets = [url, u && webhookRequest(url).target, u?.password, u && decodeURIComponent(u.password), u?.username, u && u.pathname.length > 1 ? u.pathname + u.search : null, u?.search]
    .filter((x): x is string => !!x && x.length >= 3)
    .sort((a, b) => b.length - a.length);
  for (const secret of secrets) out = out.split(secret).join("[redacted]");
  return out;
}

function reachError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const why = e.name === "TimeoutError" ? "it did not answer in time" : (e.cause?.code ?? e.cause?.message ?? e.message);
  return `the webhook could not be reached (${why})`;
}

/** POST the payload as JSON, retrying with backoff. Resolves to whether it was delivered; the error never contains the URL. */
export async function postAlert(url: string, payload: AlertPayload, opts: SendOptions = {}): Promise<{ ok: boolean; error?: string }> {
  const waits = opts.backoffMs ?? [2_000, 10_000, 30_000];
  let error = "";
  for (let attempt = 0; attempt <= waits.length; attempt++) {
    try {
      const { target, headers } = webhookRequest(url);
      const res = await fetch(target, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "Coffer", ...headers },
        body: JSON.stringify(payload),
        redirect: "manual", // a redirect would carry the payload somewhere the admin never entered
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
      await res.body?.cancel().catch(() => {});
      if (res.ok) return { ok: true };
      error = `the webhook answered HTTP ${res.status}`;
    } catch (err) {
      error = reachError(err);
    }
    error = redactWebhook(error, url);
    if (attempt < waits.length) await new Promise((r) => setTimeout(r, waits[attempt]));
  }
  return { ok: false, error };
}

export function webhookUrl(inst: Instance): string | null {
  const stored = currentSettings(inst.paths.settings).backup.notify.webhook_url;
  if (!stored) return null;
  try {
    return decryptSecret(inst.configKey, stored);
  } catch {
    console.error("Coffer: the webhook URL in settings.yaml cannot be decrypted with keys/config.key; alerts are off");
    return null;
  }
}

/** Send an alert about this instance if a webhook is configured; never throws. */
export async function alert(inst: Instance, event: AlertPayload["event"], error: string | null, lastSuccess: string | null, opts?: SendOptions) {
  const url = webhookUrl(inst);
  if (!url) return { ok: false, error: "no webhook is configured" };
  const payload: AlertPayload = { instance: instanceName(inst), event, time: new Date().toISOString(), error, last_success: lastSuccess };
  const r = await postAlert(url, payload, opts);
  if (!r.ok) console.error(`Coffer: could not deliver the ${event} alert: ${r.error}`);
  return r;
}
