import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { S3Client, GetObjectCommand } from "@aws-sdk/client-s3";
import { test, expect } from "@playwright/test";
import { startServer, setupInstance, signInCookie, type Server } from "../e2e/support/server";
import { startS3 } from "../e2e/support/s3";
import { benchSettings, rssSampler, idleRss, measureShell, ensureTools, vaultInstance, fmtMiB, MiB, table, quietProofJob } from "./support";
import { Targets } from "./targets";

const WORK = path.resolve(process.env.BENCH_DIR ?? ".bench");
const CHOSEN = 100;

type Doc = { id: number; name: string; size: number; sha256: string };

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await work();
  return { value, seconds: (performance.now() - t0) / 1000 };
}

async function json(res: Response): Promise<any> {
  const body = await res.json();
  expect(res.status, JSON.stringify(body).slice(0, 500)).toBeLessThan(300);
  return body;
}

// Runs after backup.bench.ts, on its dataset and its full archive (the database with its filler rows, the 1 GiB vault).
test("granular: one document, a list, and 100 documents from a stored archive and from an offsite snapshot", async () => {
  const backups = path.join(WORK, "data", "backups");
  const name = fs.existsSync(backups) ? fs.readdirSync(backups).find((n) => n.startsWith("coffer_full_") && n.endsWith(".tar.gz")) : undefined;
  test.skip(!name, "run backup.bench.ts first: it makes the dataset and the archive");
  ensureTools({ tar: "tar" });
  const archive = path.join(backups, name!);
  const size = fs.statSync(archive).size;

  // The peers: tar extracting only coffer.db (stopping there: --occurrence), and the whole archive.
  const out = path.join(WORK, "granular-untar");
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  const tarDb = await measureShell(`tar xzf ${archive} -C ${out} --occurrence=1 coffer.db`);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  const tarAll = await measureShell(`tar xzf ${archive} -C ${out}`);
  fs.rmSync(out, { recursive: true, force: true });

  // The instance: the dataset's vault and small database (hard links), the archive beside it; continuous
  // protection off, so a document erased for good loses its file and a restore has to fetch it.
  const s3 = await startS3("granular-bench");
  const servers: Server[] = [];
  try {
    const dataDir = path.join(WORK, "granular-data");
    vaultInstance(path.join(WORK, "data"), dataDir);
    fs.mkdirSync(path.join(dataDir, "backups"));
    fs.linkSync(archive, path.join(dataDir, "backups", name!));
    // Its seek index too (the sidecar the backup wrote beside it), or one document costs a pass over the archive.
    const sidecar = path.join(backups, `.${name}.idx`);
    expect(fs.existsSync(sidecar), "the stored archive has its seek index beside it").toBe(true);
    fs.linkSync(sidecar, path.join(dataDir, "backups", `.${name}.idx`));
    benchSettings(dataDir, s3, { offsite: false, continuous: false });
    quietProofJob(dataDir);
    const server = await startServer({ dataDir });
    servers.push(server);
    const cookie = await signInCookie(server, "admin", "admin-password-1");
    const headers = { cookie, origin: server.url };
    await new Promise((r) => setTimeout(r, 1000));
    const idle = await idleRss(server.proc.pid!);
    const sampler = rssSampler(server.proc.pid!);

    const docs = (await json(await fetch(`${server.url}/api/documents`, { headers }))).documents as Doc[];
    const chosen = docs.slice(0, CHOSEN);
    const one = chosen[chosen.length - 1]; // the last: the furthest into the archive of those chosen
    // Erased for good (trash, then delete forever): rows and files gone.
    for (const d of chosen) {
      expect((await fetch(`${server.url}/api/documents/${d.id}`, { method: "DELETE", headers })).status).toBe(204);
      expect((await fetch(`${server.url}/api/trash/${d.id}`, { method: "DELETE", headers })).status).toBe(204);
    }
    const filesDir = `${server.url}/api/settings/backup/files/${name}/documents`;
    const list = await timed(async () => json(await fetch(filesDir, { headers })));
    expect(list.value.documents.filter((d: { state: string }) => d.state === "deleted_since")).toHaveLength(chosen.length);
    const listCached = await timed(async () => json(await fetch(filesDir, { headers })));
    const restoreIds = async (url: string, ids: number[]) =>
      json(await fetch(url, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify({ ids }) }));
    const oneLocal = await timed(() => restoreIds(`${filesDir}/restore`, [one.id]));
    expect(oneLocal.value.restored).toHaveLength(1);
    const rest = chosen.filter((d) => d.id !== one.id).map((d) => d.id);
    // The one restored above is erased again, so the hundred are measured as a hundred.
    for (const id of [one.id]) {
      expect((await fetch(`${server.url}/api/documents/${id}`, { method: "DELETE", headers })).status).toBe(204);
      expect((await fetch(`${server.url}/api/trash/${id}`, { method: "DELETE", headers })).status).toBe(204);
    }
    const hundredLocal = await timed(() => restoreIds(`${filesDir}/restore`, [one.id, ...rest]));
    expect(hundredLocal.value.restored).toHaveLength(chosen.length);
    const localPeak = sampler.stop();

    // The same hundred uploaded fresh, to a new instance: the time they would take to put back by hand.
    fs.rmSync(path.join(WORK, "granular-fresh"), { recursive: true, force: true }); // a run that failed leaves one behind
    const fresh = await startServer({ dataDir: path.join(WORK, "granular-fresh") });
    servers.push(fresh);
    await setupInstance(fresh);
    const freshCookie = await signInCookie(fresh, "admin", "admin-password-1");
    const bodies = chosen.map((d) => ({ name: d.name, file: path.join(dataDir, "vault", d.sha256.slice(0, 2), d.sha256) }));
    const upload = await timed(async () => {
      for (const b of bodies) {
        const res = await fetch(`${fresh.url}/api/documents?name=${encodeURIComponent(b.name)}`, { method: "POST", headers: { cookie: freshCookie }, body: fs.readFileSync(b.file) });
        expect(res.status).toBe(201);
      }
    });
    await fresh.stop();

    // Offsite: one snapshot in the bucket, then one document erased for good and brought back from it.
    benchSettings(dataDir, s3, { offsite: true, continuous: false });
    const run = await json(await fetch(`${server.url}/api/settings/backup/run`, { method: "POST", headers }));
    expect(run.offsite, JSON.stringify(run)).toMatchObject({ ok: true });
    const snapshots = (await json(await fetch(`${server.url}/api/settings/backup/offsite/snapshots`, { headers }))).snapshots as { name: string }[];
    const snapshot = snapshots[0].name;
    for (const id of [one.id]) {
      expect((await fetch(`${server.url}/api/documents/${id}`, { method: "DELETE", headers })).status).toBe(204);
      expect((await fetch(`${server.url}/api/trash/${id}`, { method: "DELETE", headers })).status).toBe(204);
    }
    const offsiteSampler = rssSampler(server.proc.pid!);
    const snapDir = `${server.url}/api/settings/backup/offsite/snapshots/${snapshot}/documents`;
    const offsiteList = await timed(async () => json(await fetch(snapDir, { headers })));
    expect(offsiteList.value.documents.find((d: Doc) => d.id === one.id)?.state).toBe("deleted_since");
    const oneOffsite = await timed(() => restoreIds(`${snapDir}/restore`, [one.id]));
    expect(oneOffsite.value.restored).toHaveLength(1);
    const offsitePeak = offsiteSampler.stop();
    // Its transfer alone: the one blob object, read straight from the S3 server.
    const client = new S3Client({ endpoint: s3.endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
    // A plain repository names a blob by its hash (documents of one size are many in this dataset).
    const key = `coffer/blobs/${one.sha256.slice(0, 2)}/${one.sha256}`;
    const transfer = await timed(async () => {
      const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
      const bytes = await got.Body!.transformToByteArray();
      expect(crypto.createHash("sha256").update(bytes).digest("hex")).toBe(one.sha256);
    });
    client.destroy();
    const peak = Math.max(localPeak, offsitePeak);
    await server.stop();

    console.log(`\nArchive: ${fmtMiB(size)}; ${docs.length} documents, ${chosen.length} chosen (${fmtMiB(chosen.reduce((a, d) => a + d.size, 0))}); one document ${fmtMiB(one.size)}\n`);
    table([
      { what: "tar xzf, only coffer.db (--occurrence=1)", seconds: tarDb.seconds.toFixed(2) },
      { what: "Coffer: list a stored archive's documents (first look)", seconds: list.seconds.toFixed(2) },
      { what: "Coffer: list it again (cached)", seconds: listCached.seconds.toFixed(2) },
      { what: "tar xzf, the whole archive", seconds: tarAll.seconds.toFixed(2) },
      { what: "Coffer: restore one document from it", seconds: oneLocal.seconds.toFixed(2) },
      { what: `Coffer: restore ${chosen.length} chosen documents from it`, seconds: hundredLocal.seconds.toFixed(2) },
      { what: `upload the same ${chosen.length} documents fresh`, seconds: upload.seconds.toFixed(2) },
      { what: "Coffer: list an offsite snapshot's documents", seconds: offsiteList.seconds.toFixed(2) },
      { what: "Coffer: restore one document from it", seconds: oneOffsite.seconds.toFixed(2) },
      { what: "its blob alone, GET from the S3 server", seconds: transfer.seconds.toFixed(2) },
    ]);
    console.log(`\nServer RSS idle ${fmtMiB(idle)}, peak ${fmtMiB(peak)}\n`);
    const t = new Targets("granular");
    t.atMost("list a stored archive / tar xzf of coffer.db alone", list.seconds / tarDb.seconds, 1.0);
    t.atMost("restore one document from a stored archive", oneLocal.seconds, 1.0, " s");
    t.atMost("restore one document / tar xzf of the whole archive", oneLocal.seconds / tarAll.seconds, 1 / 20, "", 3);
    t.atMost("restore one document from an offsite snapshot, less its transfer", oneOffsite.seconds - transfer.seconds, 1.0, " s");
    t.atMost(`restore ${chosen.length} chosen documents / upload them fresh`, hundredLocal.seconds / upload.seconds, 1.2);
    t.atMost("server peak RSS", peak / MiB, 200, " MiB", 0);
    t.check();
  } finally {
    for (const x of servers) await x.stop().catch(() => {});
    await s3.close();
  }
});
