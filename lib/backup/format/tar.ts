/**
 * A minimal POSIX ustar writer: Coffer writes only regular files with short
 * fixed names, and writing headers itself lets the archive writer know each
 * entry's boundaries (to switch the gzip level per blob).
 */
const BLOCK = 512;

function writeOctal(buf: Buffer, offset: number, width: number, value: number): void {
  const s = value.toString(8).padStart(width - 1, "0");
  if (s.length > width - 1) throw new Error(`tar field overflow (${value})`);
  buf.write(s + "\0", offset, width, "ascii");
}

function writeSize(buf: Buffer, size: number): void {
  if (size < 0o77777777777) return writeOctal(buf, 124, 12, size);
  // GNU base-256 for members of 8 GiB and more.
  buf[124] = 0x80;
  let v = BigInt(size);
  for (let i = 135; i > 124; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** typeflag and linkname exist so tests can build the hostile archives restore must refuse. */
export function tarHeader(name: string, size: number, mtime: Date, mode = 0o644, typeflag = "0", linkname = ""): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${name}`);
  const h = Buffer.alloc(BLOCK, 0);
  h.write(name, 0, 100, "utf8");
  writeOctal(h, 100, 8, mode);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeSize(h, size);
  writeOctal(h, 136, 12, Math.floor(mtime.getTime() / 1000));
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  h.write(typeflag, 156, 1, "ascii");
  if (linkname) h.write(linkname, 157, 100, "utf8");
  h.write("ustar\0", 257, 6, "ascii");
  h.write("00", 263, 2, "ascii");
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
  return h;
}

export function tarPadding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest, 0);
}

export const TAR_END = Buffer.alloc(BLOCK * 2, 0);
