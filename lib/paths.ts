import path from "node:path";

/** Environment variables as lib/ reads them (process.env, or a test's own). */
export type Env = Record<string, string | undefined>;

/** Where every piece of instance state lives (DESIGN section 1). */
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
  staging: string;
  tmp: string;
}

export function resolveDataDir(env: Env = process.env): string {
  return path.resolve(/*turbopackIgnore: true*/ env.COFFER_DATA_DIR || "./data");
}

export function dataPaths(root: string): DataPaths {
  const r = path.resolve(/*turbopackIgnore: true*/ root);
  return {
    root: r,
    db: path.join(r, "coffer.db"),
    settings: path.join(r, "settings.yaml"),
    keysDir: path.join(r, "keys"),
    secretKey: path.join(r, "keys", "secret.key"),
    configKey: path.join(r, "keys", "config.key"),
    vault: path.join(r, "vault"),
    backups: path.join(r, "backups"),
    setupToken: path.join(r, "setup-token"),
    staging: path.join(r, ".staging"),
    tmp: path.join(r, ".tmp"),
  };
}
