/**
 * coffer: back up, list, verify, restore and check an instance from a shell.
 * The same lib/ functions as the web app; plain Node at run time (compiled by
 * `npm run build:cli`, which npm install runs).
 */
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { parseArgs } from "node:util";
import { closeInstance, type Instance } from "../lib/instance";
import { openRecoveredInstance, recoverAndSay } from "../lib/startup";
import { resolveDataDir } from "../lib/paths";
import { AppError } from "../lib/errors";
import { formatBytes } from "../lib/format";
import { runBackupJob } from "../lib/backup/jobs/runner";
import { configuredLocation, connectionSchema, toLocation } from "../lib/backup/offsite/location";
import type { S3Location } from "../lib/backup/offsite/location";
import os from "node:os";
import { PassThrough, Readable } from "node:stream";
import { listStoredBackups } from "../lib/backup/local/repository";
import { currentBackupDir } from "../lib/backup/local/directory";
import { LocalDirTarget, READ_CHUNK, streamRange } from "../lib/backup/local/target";
import { stageArchive, discardStaged, type RestorePreview } from "../lib/backup/restore/staging";
import { describeChanges } from "../lib/backup/restore/changes-words";
import { applyRestore } from "../lib/backup/restore/apply";
import { ensureSetupCode } from "../lib/auth/setup";
import { isSetupComplete } from "../lib/instance";
import { doctorDataDir, worst } from "../lib/doctor";
import { runningServer } from "../lib/server-pid";
import { LAYOUT } from "../lib/layout";
import { SELECTABLE_SCOPES, selectableScopeSchema } from "../lib/backup/format/tables";
import { AgeError, parseIdentities, type AgeKeys } from "../lib/crypto/age";
import { ageArchiveError } from "../lib/backup/format/reader";
import { systemActor } from "../lib/audit/log";

const USAGE = `Usage: coffer [--data-dir DIR] [--json] <command>

Commands:
  backup [--scope SCOPE] [--out DIR]          write a backup (default: the configured directory)
                                              SCOPE: ${SELECTABLE_SCOPES.join(", ")} (default full)
  list                                        stored backups, newest first
  verify FILE [KEY]                           check a backup as a restore would, without applying it
  verify --all                                re-read every stored backup now (local archives, and offsite
                                              snapshots and document files when offsite is on)
  drill                                       restore the newest backup into a scratch directory and check it
                                              (the live instance is not touched); prints the recovery time
  restore FILE [KEY] [--yes]                  restore a backup into this data dir (the server must be stopped)
  restore FILE --documents 12,15 [KEY]       bring chosen documents of a backup back into this instance
  restore FILE --deleted-since [KEY]          … or every document deleted since it (the server may keep running)
  restore --to-time 2026-12-06T10:41:00Z [--from s3://BUCKET/PREFIX] [KEY] [--yes]
                                              restore to a second of the continuous window (the local
                                              replica, or with --from the bucket's continuous copy)
  restore --from s3://BUCKET/PREFIX [SNAPSHOT] [KEY] [--yes]
                                              restore from an offsite repository (default: its newest snapshot)
                                              KEY for an encrypted backup (.tar.gz.age):
                                              --identity FILE (the recovery kit or an age-keygen file)
                                              or --passphrase-file FILE
  snapshots [--from s3://BUCKET/PREFIX]       offsite snapshots (default: the configured repository)
  export SNAPSHOT|latest [--from s3://…] [KEY] > full.tar.gz
                                              a portable full archive assembled from an offsite snapshot
  doctor [--deep] [--fix]                     check the instance; --fix repairs only what is safe
  setup-code                                  print the pending setup code

Options:
  --data-dir DIR   the data directory (default: COFFER_DATA_DIR or ./data)
  --json           machine-readable output on stdout

With --from, the storage is reached with --endpoint URL (or AWS_ENDPOINT_URL), --region
(or AWS_REGION, default us-east-1), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY;
--virtual-hosted for stores that do not take path-style addresses.

Exit codes: 0 ok, 1 findings or failure, 2 usage.`;

class UsageError extends Error {}

function progress(label: string) {
  let last = 0;
  return (done: number, total: number) => {
    const now = Date.now();
    if (now - last < 1000 && done < total) return;
    last = now;
    const pct = total ? Math.floor((done / total) * 100) : 100;
    process.stderr.write(`${label}: ${pct}% (${formatBytes(done)} of ${formatBytes(total)})\n`);
  };
}

function out(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + "\n" : text + "\n");
}

function describePreview(p: RestorePreview): string {
  return [
    `Backup made:    ${p.created_at}`,
    `Made by:        Coffer ${p.app_version} (${p.trigger})`,
    `Scope:          ${p.scope}`,
    `Accounts:       ${p.tables.users ?? "-"}`,
    `Documents:      ${p.tables.documents ?? "-"}`,
    `Document files: ${p.vault.objects} (${formatBytes(p.vault.bytes)})`,
    ...(p.encrypted ? ["Encrypted:      yes (age), decrypted with the key given"] : []),
    ...(p.upgrade ? [`Upgrade:        ${p.upgrade}`] : []),
    ...(p.changes ? describeChanges(p.changes).map((line, i) => `${i ? "" : "Against now:"}`.padEnd(16) + line) : []),
    ...p.warnings.map((w) => `Warning:        ${w}`),
  ].join("\n");
}

/** The key of an encrypted backup, read from the files named; used for this command only. */
function cliKeys(o: { identity?: string; "passphrase-file"?: string }): AgeKeys | undefined {
  const keys: AgeKeys = {};
  const read = (flag: string, file: string) => {
    try {
      return fs.readFileSync(file, "utf8");
    } catch {
      throw new UsageError(`${flag}: cannot read ${file}.`);
    }
  };
  try {
    if (o.identity) keys.identities = parseIdentities(read("--identity", o.identity));
  } catch (err) {
    if (err instanceof AgeError) throw ageArchiveError(err);
    throw err;
  }
  // A passphrase file holds the passphrase on its first line.
  if (o["passphrase-file"]) keys.passphrase = read("--passphrase-file", o["passphrase-file"]).split(/\r?\n/)[0];
  return keys.identities || keys.passphrase !== undefined ? keys : undefined;
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((r) => rl.question(question, r));
  rl.close();
  return answer.trim().toLowerCase() === "yes";
}

/** Where each connection field comes from on the command line, to name it in an error. */
const CONNECTION_FLAG: Record<string, string> = { endpoint: "--endpoint", region: "--region", bucket: "the bucket in s3://BUCKET", prefix: "the prefix in s3://BUCKET/PREFIX" };

/** s3://bucket/prefix plus the endpoint and keys from flags and the standard AWS variables, checked by the wizard's own rules. */
function s3From(o: { from?: string; endpoint?: string; region?: string; "virtual-hosted"?: boolean }): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(o.from ?? "");
  if (!m) throw new UsageError("--from takes s3://BUCKET/PREFIX.");
  const endpoint = o.endpoint ?? process.env.AWS_ENDPOINT_URL ?? "";
  if (!endpoint) throw new UsageError("Give the storage's address with --endpoint URL (or AWS_ENDPOINT_URL).");
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID ?? "";
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY ?? "";
  if (!accessKeyId || !secretAccessKey) throw new UsageError("Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the storage.");
  const parsed = connectionSchema.safeParse({
    endpoint,
    region: o.region ?? process.env.AWS_REGION ?? "us-east-1",
    bucket: m[1],
    prefix: m[2] ?? "",
    access_key_id: accessKeyId,
    secret_access_key: secretAccessKey,
    path_style: !o["virtual-hosted"],
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new UsageError(`${CONNECTION_FLAG[String(issue.path[0])] ?? String(issue.path[0])}: ${issue.message}`);
  }
  return toLocation(parsed.data);
}

function openFile(file: string | undefined): fs.ReadStream {
  if (!file) throw new UsageError("Name the backup file.");
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new AppError(404, "NOT_FOUND", `${file} is not a file.`);
  return fs.createReadStream(file, { highWaterMark: READ_CHUNK });
}

/**
 * Fires on the first Ctrl-C (or SIGTERM): a transfer from a bucket stops and
 * cleans up its staging instead of dying mid-write. A second one kills as usual.
 */
function interrupted(): AbortSignal {
  const stop = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      process.stderr.write("Stopping…\n");
      stop.abort(new AppError(400, "CLIENT_GONE", "Stopped (interrupted): nothing was restored or exported."));
    });
  }
  return stop.signal;
}

/** `snapshots` and `export`, against a repository given by --from or configured in the instance. */
async function offsiteCommand(command: string, arg: string | undefined, o: Parameters<typeof cliKeys>[0] & { json: boolean }, loc: S3Location): Promise<number> {
  // The AWS SDK is loaded by the commands that talk to a bucket only: every other command starts 200 ms sooner.
  const { closeRepository, listOffsiteSnapshots, openRepository } = await import("../lib/backup/offsite/repository");
  const { exportSnapshot, newestSnapshot } = await import("../lib/backup/offsite/pull");
  const repo = openRepository(loc);
  try {
    if (command === "snapshots") {
      const snaps = await listOffsiteSnapshots(repo, interrupted());
      out(
        o.json,
        snaps,
        snaps.length
          ? snaps.map((s) => `${s.name}  ${formatBytes(s.total_bytes).padStart(8)}  ${String(s.documents ?? "?").padStart(6)} documents  ${s.verified ? "complete" : "INCOMPLETE"}`).join("\n")
          : "No snapshots in this repository.",
      );
      return 0;
    }
    if (!arg) throw new UsageError("Name the snapshot to export (or latest).");
    if (process.stdout.isTTY) throw new UsageError("export writes the archive to standard output: redirect it to a file (> full.tar.gz).");
    const signal = interrupted();
    const name = arg === "latest" ? await newestSnapshot(repo, signal) : arg;
    // Through a pass-through: standard output is not ours to end.
    const pass = new PassThrough();
    // A failed export destroys the stream with its error, which main() reports as a sentence, not as an unhandled 'error' and its stack trace.
    pass.on("error", () => {});
    pass.pipe(process.stdout, { end: false });
    const meta = await exportSnapshot(repo, name, pass, { tmpDir: os.tmpdir(), keys: cliKeys(o), signal });
    await new Promise<void>((resolve) => (pass.readableEnded ? resolve() : pass.once("end", () => resolve())));
    await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
    process.stderr.write(`Exported ${name}: ${meta.vault.objects} document files (${formatBytes(meta.vault.bytes)}), a plain .tar.gz.\n`);
    return 0;
  } finally {
    closeRepository(repo);
  }
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        "data-dir": { type: "string" },
        json: { type: "boolean", default: false },
        scope: { type: "string" },
        out: { type: "string" },
        yes: { type: "boolean", default: false },
        identity: { type: "string" },
        "passphrase-file": { type: "string" },
        deep: { type: "boolean", default: false },
        all: { type: "boolean", default: false },
        fix: { type: "boolean", default: false },
        from: { type: "string" },
        "to-time": { type: "string" },
        documents: { type: "string" },
        "deleted-since": { type: "boolean", default: false },
        endpoint: { type: "string" },
        region: { type: "string" },
        "virtual-hosted": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`coffer: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values: o, positionals } = parsed;
  const [command, arg] = positionals;
  if (o.help || !command) {
    process.stdout.write(USAGE + "\n");
    return command || o.help ? 0 : 2;
  }
  const dataDir = o["data-dir"] ? path.resolve(o["data-dir"]) : resolveDataDir();
  let inst: Instance | undefined;
  try {
    if (!["backup", "list", "verify", "drill", "restore", "doctor", "setup-code", "snapshots", "export"].includes(command)) throw new UsageError(`Unknown command "${command}".`);
    if ((command === "snapshots" || command === "export") && (o.from || !fs.existsSync(path.join(dataDir, LAYOUT.database)))) {
      return await offsiteCommand(command, arg, o, s3From(o));
    }
    if (command === "doctor" && !fs.existsSync(path.join(dataDir, LAYOUT.database))) {
      throw new AppError(404, "NO_INSTANCE", `There is no Coffer instance in ${dataDir}.`);
    }
    if (command === "doctor") {
      recoverAndSay(dataDir, (line) => process.stderr.write(line + "\n"));
      const report = await doctorDataDir(dataDir, { deep: o.deep, fix: o.fix });
      const lines = report.findings.map((f) => `${f.severity.toUpperCase().padEnd(4)}  ${f.check.padEnd(22)}  ${f.message}${f.examples.length ? "\n" + f.examples.map((e) => `      - ${e}`).join("\n") : ""}`);
      out(o.json, report, [...lines, ...report.fixed.map((f) => `FIXED ${f}`)].join("\n"));
      return worst(report.findings) === "ok" ? 0 : 1;
    }
    inst = openRecoveredInstance(dataDir, (line) => process.stderr.write(line + "\n"));

    if (command === "backup") {
      const scope = selectableScopeSchema.safeParse(o.scope ?? "full");
      if (!scope.success) throw new UsageError(`--scope is one of ${SELECTABLE_SCOPES.join(", ")}.`);
      const dir = o.out ? path.resolve(o.out) : currentBackupDir(inst);
      if (o.out) fs.mkdirSync(dir, { recursive: true });
      const { local: r, offsite } = await runBackupJob(inst, {
        scope: scope.data,
        trigger: "cli",
        target: new LocalDirTarget(dir),
        actor: systemActor("cli"),
        onProgress: progress("Backing up"),
        log: (line) => process.stderr.write(`coffer: ${line}\n`),
      });
      const file = path.join(dir, r.name);
      const off = offsite && (offsite.ok ? { ok: true, snapshot: offsite.result.snapshot, location: offsite.result.location, uploaded: offsite.result.blobsUploaded, skipped: offsite.result.blobsSkipped, bytes: offsite.result.bytesUploaded } : { ok: false, code: offsite.error.code, error: offsite.error.message });
      const offLine = !offsite ? "" : offsite.ok ? `\nOffsite: ${offsite.result.location}/snapshots/${offsite.result.snapshot} (${offsite.result.blobsUploaded} new document files, ${formatBytes(offsite.result.bytesUploaded)} sent)` : `\nOffsite copy FAILED: ${offsite.error.message}`;
      out(o.json, { name: r.name, file, bytes: r.bytes, verified: r.verified, created_at: r.meta.created_at, offsite: off }, `${file} (${formatBytes(r.bytes)}, verified)${offLine}`);
      return offsite && !offsite.ok ? 1 : 0;
    }
    if (command === "list") {
      const rows = await listStoredBackups(inst);
      out(
        o.json,
        rows,
        rows.length
          ? rows.map((b) => `${b.name}  ${formatBytes(b.size).padStart(8)}  ${b.scope.padEnd(10)}  ${b.verified === true ? "verified" : b.verified === false ? "FAILED" : "unchecked"}`).join("\n")
          : "No stored backups.",
      );
      return 0;
    }
    if (command === "verify" && o.all) {
      const { verifySlice } = await import("../lib/backup/proof/verify");
      const r = await verifySlice(inst, { all: true, log: (line) => process.stderr.write(`coffer: ${line}\n`) });
      const objects = r.checked.filter((c) => c.kind !== "blob");
      const blobs = r.checked.filter((c) => c.kind === "blob");
      const mark = (ok: 0 | 1 | null) => (ok === 1 ? "OK    " : ok === 0 ? "FAILED" : "SKIP  ");
      const lines = [
        ...objects.map((c) => `${mark(c.ok)}  ${c.target.padEnd(7)}  ${c.object}  ${formatBytes(c.size)}${c.error ? `\n        ${c.error}` : ""}`),
        ...(blobs.length ? [`${blobs.some((b) => b.ok === 0) ? "FAILED" : "OK    "}  offsite  ${blobs.length} document files, ${formatBytes(blobs.reduce((a, b) => a + b.size, 0))}`] : []),
        ...blobs.filter((b) => b.ok !== 1).map((b) => `        ${b.error}`),
        ...(r.offsiteError ? [`FAILED  offsite  the repository could not be read: ${r.offsiteError}`] : []),
      ];
      out(o.json, { ok: !r.checked.some((c) => c.ok === 0) && !r.offsiteError, objects: r.checked, offsite_error: r.offsiteError }, lines.length ? lines.join("\n") : "No stored backups.");
      return r.checked.some((c) => c.ok === 0) || r.offsiteError ? 1 : 0;
    }
    if (command === "drill") {
      const { runDrill } = await import("../lib/backup/proof/drill");
      process.stderr.write("Restoring the newest backup into a scratch directory…\n");
      const d = await runDrill(inst, { trigger: "cli", log: (line) => process.stderr.write(`coffer: ${line}\n`) });
      const detail = d.detail ? JSON.parse(d.detail) : null;
      const text =
        d.status === "success"
          ? `Restore proven: ${d.archive} (${d.source}) restored in ${d.seconds} s (staged ${detail.stage_s} s, applied ${detail.apply_s} s, checked ${detail.check_s} s): ${detail.documents} documents, ${detail.accounts} accounts, ${detail.document_files} document files.`
          : `Restore drill ${d.status.toUpperCase()}: ${d.error}`;
      out(o.json, { ...d, detail }, text);
      return d.status === "success" ? 0 : 1;
    }
    if (command === "verify") {
      const preview = await stageArchive(inst, openFile(arg), { keys: cliKeys(o) });
      discardStaged(inst, preview.id);
      out(o.json, { ok: true, ...preview }, `OK: ${arg} is a valid Coffer backup.\n${describePreview(preview)}`);
      return 0;
    }
    if (command === "snapshots" || command === "export") return await offsiteCommand(command, arg, o, configuredLocation(inst));
    if (command === "restore" && (o.documents !== undefined || o["deleted-since"])) {
      // Single documents go into the running instance through the lock: no need to stop the server.
      const { restoreDocuments } = await import("../lib/backup/restore/documents");
      let choice: { ids: number[] } | { deleted_since: true };
      if (o["deleted-since"]) {
        if (o.documents !== undefined) throw new UsageError("Give --documents or --deleted-since, not both.");
        choice = { deleted_since: true };
      } else {
        const ids = o.documents!.split(",").map((x) => x.trim());
        if (!ids.length || ids.some((x) => !/^[1-9][0-9]{0,15}$/.test(x) || !Number.isSafeInteger(Number(x)))) throw new UsageError("--documents takes document ids separated by commas, e.g. --documents 12,15.");
        choice = { ids: ids.map(Number) };
      }
      const file = arg;
      openFile(file).destroy(); // exists and is a file
      const admin = inst.db.prepare("SELECT id, username, role, session_version, used_bytes, created_at FROM users WHERE role = 'admin' ORDER BY id LIMIT 1").get() as import("../lib/auth/users").User | undefined;
      if (!admin) throw new AppError(409, "NO_INSTANCE", "This instance has no admin yet: finish setup first.");
      const { archiveSource, clearBrowseCache } = await import("../lib/backup/restore/browse");
      const source = archiveSource(path.basename(file!), {
        version: async () => { const st = fs.statSync(file!); return `${path.resolve(file!)}:${st.size}:${st.mtimeMs}`; },
        open: async (range) => {
          if (!range) return openFile(file);
          const span = streamRange(range);
          return span === "empty" ? Readable.from([]) : fs.createReadStream(file!, { highWaterMark: READ_CHUNK, ...span });
        },
        // A stored backup's seek index is beside it (.NAME.idx); one for another file is ignored after a look at the file's ends.
        seekable: async () => ({
          size: fs.statSync(file!).size,
          openIndex: () => new LocalDirTarget(path.dirname(file!)).openSidecar(path.basename(file!)).catch(() => null),
        }),
      });
      let restored;
      try {
        restored = await restoreDocuments(inst, admin, null, source, choice, { keys: cliKeys(o), signal: interrupted() });
      } finally {
        clearBrowseCache(inst); // this process's cache index dies with it: leave no cached database behind
      }
      out(o.json, { restored }, restored.length ? restored.map((d) => `Restored ${d.name} (id ${d.id}${d.id === d.original_id ? "" : `, was ${d.original_id}`}), owner ${d.owner}.`).join("\n") : "Nothing to restore.");
      return 0;
    }
    if (command === "restore") {
      const server = runningServer(dataDir);
      if (server) throw new AppError(409, "SERVER_RUNNING", `Coffer is running on ${dataDir} (pid ${server}). Stop it first, or restore from Settings → Backup in the browser.`);
      let preview: RestorePreview;
      if (o["to-time"] && o.from) {
        const { parsePointInTime } = await import("../lib/continuous/pitr");
        const at = parsePointInTime(o["to-time"]);
        const loc = s3From(o);
        const { closeRepository, openRepository } = await import("../lib/backup/offsite/repository");
        const { stageOffsitePointInTime } = await import("../lib/continuous/offsite-restore");
        const repo = openRepository(loc);
        try {
          process.stderr.write(`Rebuilding the instance as it was at ${at.toISOString()} from the continuous copy in ${o.from}…\n`);
          preview = await stageOffsitePointInTime(inst, repo, at, { keys: cliKeys(o), signal: interrupted() });
        } finally {
          closeRepository(repo);
        }
      } else if (o["to-time"]) {
        const { parsePointInTime, stagePointInTime } = await import("../lib/continuous/pitr");
        const at = parsePointInTime(o["to-time"]);
        process.stderr.write(`Rebuilding the instance as it was at ${at.toISOString()} from the continuous replica…\n`);
        preview = await stagePointInTime(inst, at, { trigger: "cli", signal: interrupted() });
      } else if (o.from) {
        const loc = s3From(o);
        const { closeRepository, openRepository } = await import("../lib/backup/offsite/repository");
        const { stageOffsiteSnapshot } = await import("../lib/backup/offsite/pull");
        const repo = openRepository(loc);
        try {
          process.stderr.write(`Fetching ${arg ?? "the newest snapshot"} from ${o.from}…\n`);
          preview = await stageOffsiteSnapshot(inst, repo, arg ?? null, { keys: cliKeys(o), signal: interrupted() });
        } finally {
          closeRepository(repo);
        }
      } else preview = await stageArchive(inst, openFile(arg), { keys: cliKeys(o) });
      process.stderr.write(describePreview(preview) + "\n");
      if (!o.yes && !(await confirm(`Replace the instance in ${dataDir} with this backup? Type yes: `))) {
        discardStaged(inst, preview.id);
        process.stderr.write("Not restored. (Use --yes to skip this question.)\n");
        return 1;
      }
      const { instance: restored, ...r } = await applyRestore(inst, preview.id, systemActor("cli"));
      inst = restored; // applyRestore closed the old one; the restored one is closed below
      out(o.json, r, `Restored the backup of ${r.restored_from}.${r.prerestore ? ` The previous state is in ${r.prerestore}.` : ""}`);
      return 0;
    }
    // setup-code
    if (isSetupComplete(inst)) throw new AppError(409, "SETUP_COMPLETE", "Setup is already complete; there is no setup code.");
    const code = ensureSetupCode(inst);
    out(o.json, { setup_code: code }, code ?? "");
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`coffer: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    const e = err as AppError;
    if (o.json) process.stdout.write(JSON.stringify({ error: { code: e.code ?? "ERROR", message: e.message } }) + "\n");
    process.stderr.write(`coffer: ${e.message}${e.code ? ` (${e.code})` : ""}\n`);
    return 1;
  } finally {
    if (inst) closeInstance(inst);
  }
}

