import type { Instance } from "../instance";
import { instanceName } from "../instance";
import { currentSettings } from "../settings/store";
import { decryptSecret } from "../settings/secrets";

export interface AlertPayload {
  instance: string;
  event: "backup.failed" | "backup.stale" | "test";
  time: string;
  error: string | null;
  last_success: string | null;
}

export interface SendOptions {
  /** Waits between tries; the number of entries + 1 is the number of tries. */
  backoffMs?: number[];
  timeoutMs?: number;
}

/** POST the payload as JSON, retrying with backoff. Resolves to whether it was delivered. */
export async function postAlert(url: string, payload: AlertPayload, opts: SendOptions = {}): Promise<{ ok: boolean; error?: string }> {
  const waits = opts.backoffMs ?? [2_000, 10_000, 30_000];
  let error = "";
  for (let attempt = 0; attempt <= waits.length; attempt++) {
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "user-agent": "Coffer" },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
      if (res.ok) return { ok: true };
      error = `the webhook answered HTTP ${res.status}`;
    } catch (err) {
      error = `the webhook could not be reached (${(err as Error).message})`;
    }
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
