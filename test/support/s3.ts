import path from "node:path";
import crypto from "node:crypto";
import { startS3 as startS3Process } from "../../e2e/support/s3";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { s3Client } from "@/lib/backup/offsite/s3";
import { type S3Location } from "@/lib/backup/offsite/location";
import type { Instance } from "@/lib/instance";
import { currentSettings, saveSettings } from "@/lib/settings/store";
import { encryptSecret } from "@/lib/settings/secrets";

/** s3rver's built-in account: it refuses other access key IDs (it does not check the secret). */
export const S3RVER_KEY = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface TestS3 {
  endpoint: string;
  dir: string;
  /** A fresh bucket and prefix: one repository. */
  location(prefix?: string): Promise<S3Location>;
  /** The file s3rver keeps an object's bytes in (to corrupt or delete it behind the server's back). */
  objectFile(bucket: string, key: string): string;
  close(): Promise<void>;
}

/** A real S3-protocol server (s3rver) on 127.0.0.1, in a process of its own, its files in a temp dir. */
export async function startS3(): Promise<TestS3> {
  const server = await startS3Process("coffer-unused");
  const { endpoint, dir } = server;
  return {
    endpoint,
    dir,
    async location(prefix = "coffer") {
      const bucket = `bucket-${crypto.randomBytes(4).toString("hex")}`;
      const loc: S3Location = { endpoint, region: "us-east-1", bucket, prefix, pathStyle: true, ...S3RVER_KEY, checksumCompat: true };
      const client = s3Client(loc);
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      client.destroy();
      return loc;
    },
    objectFile(bucket, key) {
      return path.join(dir, bucket, `${key}._S3rver_object`);
    },
    close: () => server.close(),
  };
}

/** Point the instance's offsite settings at `loc` (and set archive encryption, if given), as Settings would. */
export function configureOffsite(inst: Instance, loc: S3Location, encryption?: { recipients: string[] } | { passphrase: string }) {
  const s = currentSettings(inst.paths.settings);
  saveSettings(inst.paths.settings, {
    ...s,
    backup: {
      ...s.backup,
      offsite: {
        enabled: true,
        endpoint: loc.endpoint,
        region: loc.region,
        bucket: loc.bucket,
        prefix: loc.prefix,
        path_style: true,
        access_key_id: loc.accessKeyId,
        secret_access_key: encryptSecret(inst.configKey, loc.secretAccessKey),
        checksum_compat: true,
      },
      encryption: !encryption
        ? s.backup.encryption
        : "recipients" in encryption
          ? { mode: "recipients", recipients: encryption.recipients, passphrase: null }
          : { mode: "passphrase", recipients: [], passphrase: encryptSecret(inst.configKey, encryption.passphrase) },
    },
  });
}
