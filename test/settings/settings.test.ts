import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { afterEach, describe, expect, it } from "vitest";
import { currentSettings, settingsProblem, readSettingsFile, SettingsError, saveSettings, defaultSettings, updateBackupSettings } from "@/lib/settings/store";
import { encryptSecret, decryptSecret, SecretDecryptError } from "@/lib/settings/secrets";
import { openInstance, InstanceError } from "@/lib/instance";
import { tempDir, makeInstance } from "../support/instance";

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

describe("one part of the backup settings at a time", () => {
  it("saving one part keeps what another form (or a hand edit) saved a moment earlier", () => {
    const dir = tempDir("coffer-parts-");
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "settings.yaml");
    saveSettings(file, defaultSettings());
    const recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    // Another admin turns encryption on, by hand, after this page was loaded.
    const edited = readSettingsFile(file);
    fs.writeFileSync(file, YAML.stringify({ ...edited, backup: { ...edited.backup, encryption: { mode: "recipients", recipients: [recipient], passphrase: null } } }));
    updateBackupSettings(file, () => ({ schedule: "hourly", time_zone: "Europe/Berlin" }));
    const after = readSettingsFile(file).backup;
    expect(after).toMatchObject({ schedule: "hourly", time_zone: "Europe/Berlin", encryption: { mode: "recipients", recipients: [recipient] } });
    expect(currentSettings(file).backup.schedule).toBe("hourly"); // and the cache does not serve the old file
  });
});

describe("settings.yaml and YAML 1.1 tools", () => {
  it("a file Coffer writes survives a YAML 1.1 tool's read and rewrite (off stays the string off)", () => {
    const dir = tempDir("coffer-yaml11-");
    const file = path.join(dir, "settings.yaml");
    const s = defaultSettings();
    saveSettings(file, { ...s, backup: { ...s.backup, encryption: { ...s.backup.encryption, mode: "off" }, directory: "yes", time_zone: "UTC" } });
    const text = fs.readFileSync(file, "utf8");
    // What PyYAML or Ansible would see, and then write back.
    const seen = YAML.parse(text, { version: "1.1" });
    expect(seen.backup.encryption.mode).toBe("off");
    expect(seen.backup.directory).toBe("yes");
    fs.writeFileSync(file, YAML.stringify(seen, { version: "1.1" }));
    expect(readSettingsFile(file)).toEqual({ ...s, backup: { ...s.backup, directory: "yes" } });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a value of the wrong type names its key, what was found, and for a boolean why", () => {
    const dir = tempDir("coffer-yaml11-");
    const file = path.join(dir, "settings.yaml");
    saveSettings(file, defaultSettings());
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace('mode: "off"', "mode: false"));
    expect(() => readSettingsFile(file)).toThrow(/backup\.encryption\.mode: .*found false\. A YAML 1\.1 tool .* "off"/);
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("mode: false", 'mode: "off"').replace("verify_period_days: 30", "verify_period_days: monthly"));
    expect(() => readSettingsFile(file)).toThrow(/backup\.proof\.verify_period_days: .*found "monthly"/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("settings", () => {
  it("writes defaults on first start, valid by the schema", () => {
    const t = makeInstance();
    cleanups.push(t.cleanup);
    const s = readSettingsFile(t.inst.paths.settings);
    expect(s.backup.retention).toMatchObject({ mode: "count", count: 7, gfs: { latest: 10, monthly: 6 } });
    expect(s.backup.notify.webhook_url).toBeNull();
  });

  it("names the file, the line and the field of a bad settings file", () => {
    const d = tempDir();
    cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
    const f = path.join(d, "settings.yaml");
    fs.writeFileSync(f, "backup:\n  scope: full\n   bad: [\n");
    expect(() => readSettingsFile(f)).toThrow(SettingsError);
    expect(() => readSettingsFile(f)).toThrow(/settings\.yaml: not valid YAML \(line \d+\)/);
    fs.writeFileSync(f, "backup:\n  scope: everything\n");
    expect(() => readSettingsFile(f)).toThrow(/backup\.scope/);
    fs.writeFileSync(f, "surprise: 1\n");
    expect(() => readSettingsFile(f)).toThrow(/surprise|Unrecognized/);
  });

  it("an instance refuses to open with a broken settings file", () => {
    const d = tempDir();
    cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
    fs.mkdirSync(path.join(d, "data"));
    fs.writeFileSync(path.join(d, "data", "settings.yaml"), "backup: [\n");
    expect(() => openInstance(path.join(d, "data"))).toThrow(SettingsError);
  });

  it("an unusable data dir is one clear error", () => {
    const d = tempDir();
    cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
    fs.writeFileSync(path.join(d, "file"), "x");
    expect(() => openInstance(path.join(d, "file", "data"))).toThrow(InstanceError);
    expect(() => openInstance(path.join(d, "file", "data"))).toThrow(/cannot create directory .*file\/data/);
  });

  it("picks up a hand edit; a broken edit keeps the previous settings and is reported", async () => {
    const t = makeInstance();
    cleanups.push(t.cleanup);
    const f = t.inst.paths.settings;
    expect(currentSettings(f).backup.scope).toBe("full");
    await new Promise((r) => setTimeout(r, 20));
    fs.writeFileSync(f, fs.readFileSync(f, "utf8").replace("scope: full", "scope: db"));
    expect(currentSettings(f).backup.scope).toBe("db");
    expect(settingsProblem(f)).toBeNull();
    fs.writeFileSync(f, "backup: [oops\n");
    expect(currentSettings(f).backup.scope).toBe("db");
    expect(settingsProblem(f)).toMatch(/not valid YAML/);
    const s = currentSettings(f);
    saveSettings(f, { ...s, backup: { ...s.backup, scope: "vault" } });
    expect(currentSettings(f).backup.scope).toBe("vault");
    expect(settingsProblem(f)).toBeNull();
  });

  it("secrets round-trip through AES-256-GCM and fail loudly with the wrong key", () => {
    const key = Buffer.alloc(32, 7);
    const enc = encryptSecret(key, "https://hooks.example/abc");
    expect(enc.startsWith("enc:v1:")).toBe(true);
    expect(enc).not.toContain("hooks.example");
    expect(decryptSecret(key, enc)).toBe("https://hooks.example/abc");
    expect(() => decryptSecret(Buffer.alloc(32, 8), enc)).toThrow(SecretDecryptError);
  });
});
