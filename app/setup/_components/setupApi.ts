/** The wizard's calls: JSON in, JSON out; a server that does not answer JSON still gives a sentence. */
export async function postJson(url: string, body: unknown, token?: string): Promise<{ ok: boolean; data: any }> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (token) headers["x-setup-token"] = token;
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) }).catch(() => null);
  if (!res) return { ok: false, data: { error: { message: "This server did not answer. Try again." } } };
  const data = await res.json().catch(() => ({ error: { message: `The server answered ${res.status}.` } }));
  return { ok: res.ok, data };
}

export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}
