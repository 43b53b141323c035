import { describe, it, expect } from "vitest";
import { connectionFormSchema, connectionSchema } from "@/lib/backup/offsite/location";

/** One connection, three spellings: the wizard's JSON, Settings' form, the CLI (cli-offsite.test.ts). */
describe("a repository connection has one set of rules", () => {
  const good = { endpoint: "https://s3.example.com", bucket: "coffer-home", prefix: "home", access_key_id: "AKIA", secret_access_key: "s3cret" };
  const firstMessage = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) => r.error && `${String(r.error.issues[0].path[0])}: ${r.error.issues[0].message}`;

  it.each([
    [{ bucket: "Not_A_Bucket" }, "bucket: Bucket names are 3-63 lowercase letters, digits, dots and hyphens."],
    [{ bucket: "" }, "bucket: Enter the bucket name."],
    [{ endpoint: "s3.example.com" }, "endpoint: Use an http:// or https:// address, e.g. https://s3.eu-central-1.amazonaws.com."],
    [{ endpoint: "http://[fe80::1]" }, "endpoint: "],
    [{ prefix: "home dir" }, "prefix: Use letters, digits, . _ - and / only."],
    [{ access_key_id: "" }, "access_key_id: Enter the access key ID."],
  ])("the wizard and the Settings form refuse %o alike", (change, message) => {
    const wizard = connectionSchema.safeParse({ ...good, ...change });
    const form = connectionFormSchema.safeParse({ ...good, ...change });
    expect(wizard.success).toBe(false);
    expect(firstMessage(wizard)).toContain(message);
    expect(firstMessage(form)).toBe(firstMessage(wizard));
  });

  it("differ only where their callers do: the form's checkboxes are on or absent, and its secret may stay empty to keep the saved one", () => {
    expect(connectionSchema.parse(good)).toMatchObject({ path_style: true, checksum_compat: true, region: "us-east-1" });
    expect(connectionSchema.safeParse({ ...good, secret_access_key: "" }).success).toBe(false);
    expect(connectionFormSchema.parse({ ...good, secret_access_key: "", enabled: "on" })).toMatchObject({ enabled: true, path_style: false, checksum_compat: false, secret_access_key: "" });
  });
});
