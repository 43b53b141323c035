import fs from "node:fs";
import zlib from "node:zlib";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";

/** Every member of a .tar.gz as name → bytes (test archives are small). */
export async function unpackToMemory(file: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const extract = tar.extract();
  const feeding = pipeline(fs.createReadStream(file), zlib.createGunzip(), extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.set(entry.header.name, Buffer.concat(chunks));
  }
  await feeding;
  return out;
}
