import fs from "node:fs";
import path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { isSetupComplete, type Instance } from "../instance";
import type { Env } from "../paths";
import { Ticker } from "../util/ticker";
import { processWide } from "../util/process-wide";
import { onSettingsWritten } from "../settings/store";
import { CONTINUOUS_STATE_DIR, continuousPlan, litestreamBinary, litestreamConfigPath, writeLitestreamConfig } from "./litestream";
import { pruneSettingsVersionsFor, recordSettingsVersion } from "./versions";
import { replicaDiskFull } from "./status";
import { alert, type SendOptions } from "../backup/alerts";
import type { OffsiteShipper } from "./offsite";
import { offsiteContinuousWanted, offsiteSyncMs } from "./offsite-state";

/** SQLite's default, put back whenever Litestream is not there to checkpoint. */
const SQLITE_AUTOCHECKPOINT = 1000;
const MAX_BACKOFF_MS = 60_000;
/** A child that ran this long is healthy again: the next failure starts the backoff afresh. */
const HEALTHY_AFTER_MS = 60_000;
const STOP_GRACE_MS = 10_000;
/** Settings versions no point in the window needs are deleted this often. */
const PRUNE_VERSIONS_MS = 3600_000;

export interface SupervisorStatus {
  running: boolean;
  pid: number | null;
  /** Times the child died without being asked to since this process started. */
  restarts: number;
  /** Why it is not running when it should be (no binary, a crash), or null. */
  problem: string | null;
}

/**
 * Runs Litestream as a child of the server (docs/architecture.md#continuous-protection): started once
 * setup is complete and backup.continuous is on, restarted with backoff when
 * it dies, restarted when its config changes, paused around a restore's swap
 * (resume() starts a new generation), stopped when the server exits. Its log
 * lines go into Coffer's log. Framework-free; the server starts one per process.
 *
 * While it replicates, it also versions settings.yaml and the keys beside
 * the replica (./versions.ts): after every settings write in this process
 * (onSettingsWritten), on each tick (hand edits, keys), and before each start.
 *
 * Checkpoints are Litestream's while it runs (litestream.io/tips, and
 * litestream#547: a checkpoint it did not make loses its WAL position and
 * forces a new generation): the served connection's wal_autocheckpoint is 0
 * while the child runs and back at SQLite's 1000 pages when it is not, so the
 * WAL never grows unchecked with Litestream gone. Litestream keeps a read
 * transaction open, so a PASSIVE checkpoint by any other connection (a CLI
 * run) can copy frames but never restart the WAL under it.
 */
export class ContinuousSupervisor {
  private readonly ticker = new Ticker(() => this.reconcile());
  /** The bucket's copy follows the local replica every few seconds (./offsite.ts); loaded with the AWS SDK only once a bucket is used. */
  private shipper: OffsiteShipper | null = null;
  private readonly shipTicker = new Ticker(() => this.ship());
  private child: ChildProcess | null = null;
  private childInst: Instance | null = null;
  private childConfig = "";
  private startedAt = 0;
  private backoffMs = 0;
  private notBefore = 0;
  private paused = false;
  private stopping: Promise<void> | null = null;
  private restarts = 0;
  private problem: string | null = null;
  /** When a tick last found the settings versioned (a hand edit after it is dated by its mtime), or null: date the next change now. */
  private versionsCheckedAt: number | null = null;
  private versionsPrunedAt = 0;
  private unlisten: (() => void) | null = null;
  /** The replica's disk was full at the last tick (alerted once per time it fills). */
  private diskFull = false;

  constructor(
    private readonly instance: () => Instance | null,
    private readonly opts: { env?: Env; log?: (line: string) => void; alertOptions?: SendOptions } = {},
  ) {
    process.once("exit", () => this.child?.kill("SIGTERM"));
  }

  private log(line: string): void {
    (this.opts.log ?? ((l: string) => console.log(`Coffer: ${l}`)))(line);
  }

  start(tickMs = 15_000): void {
    this.unlisten ??= onSettingsWritten((file) => this.settingsWritten(file));
    this.ticker.start(tickMs);
    this.shipTicker.start(offsiteSyncMs());
  }

  /** One round of sending to the bucket, while protection runs (never during a restore's swap). */
  private async ship(): Promise<unknown> {
    const inst = this.instance();
    if (this.paused || this.stopping || !inst || !isSetupComplete(inst)) return null;
    try {
      if (!continuousPlan(inst).enabled || (!this.shipper && !offsiteContinuousWanted(inst))) return null;
    } catch {
      return null;
    }
    if (!this.shipper) {
      const { OffsiteShipper } = await import("./offsite");
      this.shipper ??= new OffsiteShipper((l) => this.log(l));
    }
    if (this.paused || this.stopping) return null;
    return this.shipper.tick(inst);
  }

  /** Send what the bucket lacks now and wait for it (tests, and before a planned shutdown). */
  flushOffsite(): Promise<unknown> {
    return this.ship();
  }

  /** Stop for good (server shutdown, tests). */
  stop(): Promise<void> {
    this.ticker.stop();
    this.shipTicker.stop();
    this.unlisten?.();
    this.unlisten = null;
    this.paused = true;
    return Promise.all([this.shipper?.stop(), this.stopChild()]).then(() => {});
  }

  /** Before a restore swaps the database: Litestream must not read the files being replaced. */
  async pause(): Promise<void> {
    this.paused = true;
    this.versionsCheckedAt = null;
    await Promise.all([this.shipper?.stop(), this.stopChild()]);
  }

  /** After a restore: Litestream starts again, on a new generation (see forgetReplacedDatabase); the old generations stay restorable. */
  resume(): void {
    this.paused = false;
    this.notBefore = 0;
    this.shipper?.reset();
    // The restored settings take effect now, whatever their files' mtimes say.
    this.versionsCheckedAt = null;
    this.reconcile();
  }

  /** A settings write in this process: versioned at once, dated now (not at the next tick). */
  private settingsWritten(file: string): void {
    const inst = this.instance();
    if (!inst || this.paused || this.stopping || path.resolve(file) !== inst.paths.settings || !isSetupComplete(inst)) return;
    try {
      recordSettingsVersion(inst);
    } catch (err) {
      this.log(`continuous protection: could not keep a version of the settings: ${(err as Error).message}`);
    }
  }

  /** A full disk under the replica: said in the log and to the webhook once when it fills, and once when it has room again. */
  private watchDisk(inst: Instance, replica: string): void {
    const full = replicaDiskFull(replica);
    if (!!full === this.diskFull) return;
    this.diskFull = !!full;
    if (!full) return this.log("continuous protection: the replica's disk has room again; changes are kept again");
    this.log(`continuous protection: ${full}`);
    void alert(inst, "continuous.disk_full", full, null, this.opts.alertOptions).catch((err: unknown) => this.log(`continuous protection: the disk-full alert could not be sent: ${(err as Error).message}`));
  }

  /** Version the settings and keys as they are on disk now (deduplicated), and prune hourly. */
  private keepVersions(inst: Instance): void {
    const now = Date.now();
    try {
      recordSettingsVersion(inst, { now, since: this.versionsCheckedAt ?? now });
      this.versionsCheckedAt = now;
      if (now - this.versionsPrunedAt >= PRUNE_VERSIONS_MS) {
        pruneSettingsVersionsFor(inst, now);
        this.versionsPrunedAt = now;
      }
    } catch (err) {
      this.versionsCheckedAt = null;
      this.log(`continuous protection: could not keep a version of the settings: ${(err as Error).message}`);
    }
  }

  status(): SupervisorStatus {
    return { running: !!this.child, pid: this.child?.pid ?? null, restarts: this.restarts, problem: this.problem };
  }

  /** Bring the child in line with what should run now. Never throws. */
  reconcile(): void {
    try {
      if (this.stopping) return;
      const inst = this.instance();
      const binary = litestreamBinary(this.opts.env);
      const plan = inst && isSetupComplete(inst) ? continuousPlan(inst) : null;
      const wanted = !this.paused && !!inst && !!plan?.enabled && !!binary;
      this.problem = plan?.enabled && !binary ? "the Litestream binary is missing" : this.child || !wanted ? null : this.problem;
      if (!wanted) {
        if (this.child) void this.stopChild();
        this.versionsCheckedAt = null;
        return;
      }
      this.watchDisk(inst, plan.replica);
      // Before Litestream's first snapshot of a start: that second has its settings.
      this.keepVersions(inst);
      if (this.child) {
        // A restore installed another instance, or settings moved the replica: start again with the new config.
        if (this.childInst !== inst || writeConfigText(inst, plan) !== this.childConfig) void this.stopChild().then(() => this.reconcile());
        return;
      }
      if (Date.now() < this.notBefore) return;
      this.spawnChild(inst, plan, binary);
    } catch (err) {
      this.problem = (err as Error).message;
      this.log(`continuous protection: ${this.problem}`);
    }
  }

  private spawnChild(inst: Instance, plan: NonNullable<ReturnType<typeof continuousPlan>>, binary: string): void {
    endOrphan(inst);
    forgetReplacedDatabase(inst, plan.meta);
    const config = writeLitestreamConfig(inst, plan);
    const child = spawn(binary, ["replicate", "-config", config], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    this.childInst = inst;
    this.childConfig = writeConfigText(inst, plan);
    this.startedAt = Date.now();
    if (child.pid) fs.writeFileSync(pidFile(inst), `${child.pid}\n`, { mode: 0o600 });
    setAutocheckpoint(inst, 0);
    for (const stream of [child.stdout, child.stderr]) {
      let rest = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop() ?? "";
        for (const l of lines) if (l.trim()) this.log(`litestream: ${l.trim()}`);
      });
    }
    child.once("error", (err) => this.log(`litestream could not start: ${err.message}`));
    child.once("exit", (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      this.childInst = null;
      setAutocheckpoint(inst, SQLITE_AUTOCHECKPOINT);
      fs.rmSync(pidFile(inst), { force: true });
      if (this.stopping || this.paused) return;
      this.restarts++;
      this.backoffMs = Date.now() - this.startedAt > HEALTHY_AFTER_MS ? 1000 : Math.min(MAX_BACKOFF_MS, Math.max(1000, this.backoffMs * 2));
      this.notBefore = Date.now() + this.backoffMs;
      this.problem = `Litestream stopped (${signal ?? `exit code ${code}`}); restarting in ${Math.round(this.backoffMs / 1000)} s`;
      this.log(`continuous protection: ${this.problem}`);
      setTimeout(() => this.reconcile(), this.backoffMs).unref();
    });
    this.log(`continuous protection: Litestream ${child.pid} replicates the database to ${plan.replica}`);
  }

  private stopChild(): Promise<void> {
    const child = this.child;
    if (!child) return this.stopping ?? Promise.resolve();
    if (this.stopping) return this.stopping;
    this.stopping = new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      child.once("exit", () => {
        clearTimeout(kill);
        resolve();
      });
      // SIGTERM: Litestream syncs what is left and releases its read lock (db.go Close).
      child.kill("SIGTERM");
    }).finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }
}

function writeConfigText(inst: Instance, plan: ReturnType<typeof continuousPlan>): string {
  return JSON.stringify([inst.paths.db, plan.replica, plan.meta, plan.windowDays]);
}

function setAutocheckpoint(inst: Instance, pages: number): void {
  try {
    if (inst.db.open) inst.db.pragma(`wal_autocheckpoint = ${pages}`);
  } catch {
    /* closed by a restore meanwhile */
  }
}

/**
 * A restore (in the browser, the CLI or start-up recovery) puts another file
 * at the database's path: Litestream's shadow WAL of the old one must go
 * (litestream.io/tips, "Deleting SQLite databases"), so it starts a new
 * generation. The database file's identity says whether it is still the one
 * Litestream last followed.
 */
function forgetReplacedDatabase(inst: Instance, meta: string): void {
  const marker = path.join(inst.paths.root, CONTINUOUS_STATE_DIR, "database-id");
  const st = fs.statSync(inst.paths.db);
  const id = `${st.dev}:${st.ino}`;
  let followed: string | null = null;
  try {
    followed = fs.readFileSync(marker, "utf8").trim();
  } catch {
    /* first start */
  }
  if (followed === id) return;
  fs.rmSync(meta, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(marker), { recursive: true, mode: 0o700 });
  fs.writeFileSync(marker, `${id}\n`, { mode: 0o600 });
}

const pidFile = (inst: Instance) => path.join(inst.paths.root, CONTINUOUS_STATE_DIR, "litestream.pid");

/**
 * A Litestream left running by a server that was killed (SIGKILL leaves its
 * children): two on one database would fight over its shadow WAL. Ended only
 * if the pid is still a litestream reading this data dir's config.
 */
function endOrphan(inst: Instance): void {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile(inst), "utf8").trim());
  } catch {
    return;
  }
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
    if (Number.isInteger(pid) && pid > 1 && cmd.includes("litestream") && cmd.includes(litestreamConfigPath(inst))) process.kill(pid, "SIGKILL");
  } catch {
    /* gone already */
  }
  fs.rmSync(pidFile(inst), { force: true });
}

/** The process's one supervisor (the server's), if it started one. */
export function serverSupervisor(): { current: ContinuousSupervisor | null } {
  return processWide("continuousSupervisor", () => ({ current: null as ContinuousSupervisor | null }));
}
