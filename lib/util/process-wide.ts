/**
 * State shared by every copy of a module in this process. Next bundles a
 * module into several chunks (route handlers, instrumentation, proxy), each
 * with its own module scope, so a module-level Map would be one per chunk;
 * a Symbol.for key on globalThis is one per process.
 */
export function processWide<T>(name: string, make: () => T): T {
  const g = globalThis as unknown as Record<symbol, T>;
  return (g[Symbol.for(`coffer.${name}`)] ??= make());
}
