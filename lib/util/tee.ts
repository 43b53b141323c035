import { Writable } from "node:stream";

/** Write everything to two streams, at the pace of the slower one (backpressure); ending it ends both. */
export class Tee extends Writable {
  constructor(
    private readonly a: Writable,
    private readonly b: Writable,
  ) {
    super({ highWaterMark: 64 * 1024 });
    const fail = (err: Error) => this.destroy(err);
    a.on("error", fail);
    b.on("error", fail);
  }

  _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    let pending = 2;
    const done = () => --pending === 0 && cb();
    for (const w of [this.a, this.b]) {
      if (w.write(chunk)) done();
      else w.once("drain", done);
    }
  }

  _final(cb: (err?: Error | null) => void): void {
    let pending = 2;
    for (const w of [this.a, this.b]) w.end(() => --pending === 0 && cb());
  }

  _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (err) {
      this.a.destroy(err);
      this.b.destroy(err);
    }
    cb(err);
  }
}
