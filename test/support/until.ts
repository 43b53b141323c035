/** Poll `probe` every 100 ms until it gives something truthy (what it gave), or fail after `ms` naming `what`. */
export async function until<T>(what: string, probe: () => T | null | undefined | false, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
