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

/** A tar header's size field: octal, or GNU base-256 (high bit set) for 8 GiB and more; NaN when it is not a number. */
export function tarSize(h: Buffer): number {
  if (h[124] & 0x80) {
    let v = 0;
    for (let i = 125; i < 136; i++) v = v * 256 + h[i];
    return v;
  }
  const text = h.toString("latin1", 124, 136).replace(/\0.*$/, "").trim();
  return text ? parseInt(text, 8) : 0;
}

/**
 * A regular-file header as this writer makes them (ustar, name in the name
 * field alone, checksum right), or null for anything else: what a seek
 * through an archive's index checks before it trusts the bytes after it.
 */
export function parseFileHeader(h: Buffer): { name: string; size: number } | null {
  if (h.length !== BLOCK) return null;
  if (h.toString("latin1", 257, 263) !== "ustar\0") return null;
  const type = h[156];
  if (type !== 0x30 && type !== 0) return null;
  if (h.subarray(345, 500).some((b) => b !== 0)) return null; // a prefix would make the name longer than its field
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  const stored = h.toString("latin1", 148, 156).replace(/[\0 ]+$/, "").trim();
  if (!/^[0-7]+$/.test(stored) || parseInt(stored, 8) !== sum) return null;
  const end = h.indexOf(0);
  const name = h.toString("utf8", 0, end < 0 || end > 100 ? 100 : end);
  if (!(h[124] & 0x80) && !/^[0-7]+\0?$/.test(h.toString("latin1", 124, 136).trim())) return null;
  const size = tarSize(h);
  if (!Number.isSafeInteger(size) || size < 0) return null;
  return { name, size };
}
