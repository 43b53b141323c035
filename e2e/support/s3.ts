import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";

/**
 * A real S3-protocol server (s3rver) on 127.0.0.1 with the buckets named, in
 * a process of its own (so a benchmark measures it apart from the runner).
 */
export async function startS3(...buckets: string[]): Promise<{ endpoint: string; bucket: string; dir: string; pid: number; close: () => Promise<void> }> {
  if (buckets.length === 0) buckets = ["coffer-e2e"];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "coffer-e2e-s3-"));
  const proc = spawn(process.execPath, ["--openssl-legacy-provider", path.join(__dirname, "s3rver-main.cjs"), dir, ...buckets], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (c) => {
      out += c;
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.once("exit", (code) => reject(new Error(`s3rver exited (${code}) before listening`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket: buckets[0],
    dir,
    pid: proc.pid!,
    close: async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
