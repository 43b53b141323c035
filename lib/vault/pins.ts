import fs from "node:fs";

/**
 * While a backup reads the vault, deleting a document must not unlink a
 * blob the backup is about to read. Deletions made while any pin is held
 * are deferred and carried out when the last pin is released.
 */
interface PinState {
  pins: number;
  deferred: Map<string, () => boolean>;
}

const key = Symbol.for("coffer.blobPins");
function state(): PinState {
  const g = globalThis as unknown as Record<symbol, PinState>;
  return (g[key] ??= { pins: 0, deferred: new Map() });
}

export function pinBlobs(): () => void {
  const s = state();
  s.pins++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    s.pins--;
    if (s.pins === 0) {
      for (const [file, stillOrphan] of s.deferred) if (stillOrphan()) fs.rmSync(file, { force: true });
      s.deferred.clear();
    }
  };
}

/** Unlink `file` now, or when the pins are released if `stillOrphan()` is then still true. */
export function unlinkBlobWhenFree(file: string, stillOrphan: () => boolean): void {
  const s = state();
  if (s.pins > 0) s.deferred.set(file, stillOrphan);
  else fs.rmSync(file, { force: true });
}
