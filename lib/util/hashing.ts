import crypto from "node:crypto";
import { Transform } from "node:stream";
import { collectAfter } from "./gc";

/**
 * A pass-through that computes the SHA-256 and length of what passes (read
 * them once it has ended). `collect`: count what passes towards the next
 * young-generation collection (lib/util/gc.ts), for streams of fresh buffers
 * nothing else counts, such as an S3 object's body.
 */
export function hashingTap(opts: { collect?: boolean } = {}): Transform & { digest: () => string; bytes: () => number } {
  const hash = crypto.createHash("sha256");
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      n += chunk.length;
      if (opts.collect) collectAfter(chunk.length);
      cb(null, chunk);
    },
  });
  return Object.assign(t, { digest: () => hash.digest("hex"), bytes: () => n });
}
