import { Field, Input } from "@/components/ui";
import type { RepositoryAddress } from "@/lib/backup/offsite/location";

/** An S3-compatible store's address and keys, as the wizard sends them (lib/backup/offsite/location.ts connectionSchema). */
export type S3Connection = RepositoryAddress & { secret_access_key: string };

/** The connection from a form holding S3ConnectionFields. */
export function readConnection(f: FormData): S3Connection {
  return {
    endpoint: String(f.get("endpoint") ?? "").trim(),
    region: String(f.get("region") ?? "").trim() || "us-east-1",
    bucket: String(f.get("bucket") ?? "").trim(),
    prefix: String(f.get("prefix") ?? "").trim(),
    path_style: f.get("path_style") === "on",
    access_key_id: String(f.get("access_key_id") ?? "").trim(),
    secret_access_key: String(f.get("secret_access_key") ?? ""),
    checksum_compat: f.get("checksum_compat") === "on",
  };
}

/** The fields of an S3 connection, for a form in the wizard (restore from a bucket, or send backups to one). */
export function S3ConnectionFields({ fields, prefixHint }: { fields: Record<string, string>; prefixHint: string }) {
  return (
    <>
      <Field label="Endpoint" htmlFor="s3-endpoint" error={fields.endpoint} hint="The storage's S3 address, e.g. https://s3.eu-central-003.backblazeb2.com">
        <Input id="s3-endpoint" name="endpoint" placeholder="https://" required invalid={!!fields.endpoint} spellCheck={false} />
      </Field>
      <div className="grid gap-3 sm:grid-cols-2">
        <Field label="Bucket" htmlFor="s3-bucket" error={fields.bucket}>
          <Input id="s3-bucket" name="bucket" required invalid={!!fields.bucket} spellCheck={false} />
        </Field>
        <Field label="Folder in the bucket (prefix)" htmlFor="s3-prefix" hint={prefixHint}>
          <Input id="s3-prefix" name="prefix" defaultValue="coffer" spellCheck={false} />
        </Field>
        <Field label="Access key ID" htmlFor="s3-key" error={fields.access_key_id}>
          <Input id="s3-key" name="access_key_id" required autoComplete="off" invalid={!!fields.access_key_id} spellCheck={false} />
        </Field>
        <Field label="Secret access key" htmlFor="s3-secret" error={fields.secret_access_key}>
          <Input id="s3-secret" name="secret_access_key" type="password" required autoComplete="off" invalid={!!fields.secret_access_key} />
        </Field>
        <Field label="Region" htmlFor="s3-region" hint="us-east-1 if your provider does not name one.">
          <Input id="s3-region" name="region" defaultValue="us-east-1" spellCheck={false} />
        </Field>
      </div>
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" name="path_style" defaultChecked className="h-4 w-4 accent-emerald-700" /> Path-style addresses (MinIO, Garage, most self-hosted stores)
      </label>
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" name="checksum_compat" defaultChecked className="h-4 w-4 accent-emerald-700" /> Checksum compatibility
      </label>
    </>
  );
}
