"use client";

import { useState } from "react";
import { useRouter } from "next/navigation";

/**
 * Ask, DELETE, show the server's sentence if it refuses, refresh the page.
 * `deleting` is the key of the row in flight, for its button's spinner.
 */
export function useConfirmedDelete<K extends string | number>() {
  const router = useRouter();
  const [deleting, setDeleting] = useState<K | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function remove(key: K, url: string, question: string) {
    if (!window.confirm(question)) return;
    setDeleting(key);
    setError(null);
    const res = await fetch(url, { method: "DELETE" }).catch(() => null);
    setDeleting(null);
    if (!res || !res.ok) {
      const data = res ? await res.json().catch(() => null) : null;
      setError(data?.error?.message ?? (res ? `Delete failed (HTTP ${res.status}).` : "The connection to the server was lost."));
    }
    router.refresh();
  }

  return { deleting, error, remove };
}
