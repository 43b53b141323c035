import path from "node:path";
import { LAYOUT } from "./layout";

/** Environment variables as lib/ reads them (process.env, or a test's own). */
export type Env = Record<string, string | undefined>;

/** Where every piece of instance state lives (docs/architecture.md#the-data-directory). */
export interface DataPaths {
  root: string;
  db: string;
  settings: string;
  keysDir: string;
  secretKey: string;
  configKey: string;
  vault: string;
  backups: string;
  setupToken: string;
  instanceId: string;
  staging: string;
  tmp: string;
  lock: string;
  lostFound: string;
}

export function resolveDataDir(env: Env = process.env): string {
  return path.resolve(/*turbopackIgnore: true*/ env.COFFER_DATA_DIR || "./data");
}

export function dataPaths(root: string): DataPaths {
  const r = path.resolve(/*turbopackIgnore: true*/ root);
  const at = (rel: string) => path.join(r, ...rel.split("/"));
  return {
    root: r,
    db: at(LAYOUT.database),
    settings: at(LAYOUT.settings),
    keysDir: at(LAYOUT.keysDir),
    secretKey: at(LAYOUT.secretKey),
    configKey: at(LAYOUT.configKey),
    vault: at(LAYOUT.vault),
    backups: at(LAYOUT.backups),
    setupToken: at(LAYOUT.setupToken),
    instanceId: at(LAYOUT.instanceId),
    staging: at(LAYOUT.staging),
    tmp: at(LAYOUT.tmp),
    lock: at(LAYOUT.lock),
    lostFound: at(LAYOUT.lostFound),
  };
}
