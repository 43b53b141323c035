/** Pure formatting helpers, safe for client components too. */
export function formatBytes(n: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(v >= 10 ? 0 : 1)} ${units[i]}`;
}

export function formatDateTime(iso: string): string {
  return iso.replace("T", " ").slice(0, 19) + " UTC";
}
