import { PassThrough } from "node:stream";
import type { Instance } from "../../instance";
import { audit, type Actor } from "../../audit/log";
import { packArchive } from "../format/writer";
import { archiveEncryption } from "../format/encryption";
import { archiveBaseName, type Scope } from "../format/tables";

/**
 * A fresh archive as a stream for the browser; nothing is stored on the
 * server. Aborting (the client went away) stops the work and removes temp files.
 */
export function streamDownload(inst: Instance, actor: Actor, scope: Scope): { name: string; encrypted: boolean; stream: PassThrough; abort: () => void } {
  const now = new Date();
  const encryption = archiveEncryption(inst);
  const name = archiveBaseName(scope, now, 0, !!encryption);
  const stream = new PassThrough({ highWaterMark: 1024 * 1024 });
  const ctrl = new AbortController();
  stream.on("close", () => ctrl.abort(new Error("the download was cancelled")));
  packArchive(inst, stream, { scope, trigger: "manual", now, signal: ctrl.signal, encryptTo: encryption?.to }).then(
    (r) => audit(inst.db, actor, "backup.download", name, { scope, bytes: r.bytes, encrypted: !!encryption }),
    (err) => {
      if (!ctrl.signal.aborted) console.error(`Coffer: backup download failed: ${(err as Error).message}`);
      stream.destroy(err as Error);
    },
  );
  return { name, encrypted: !!encryption, stream, abort: () => ctrl.abort(new Error("the download was cancelled")) };
}
