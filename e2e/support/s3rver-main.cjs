// s3rver in a process of its own, for e2e tests and benchmarks: started with --openssl-legacy-provider, because
// s3rver makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has there (a listing of more than
// 1000 keys otherwise answers 500). Prints {"port": N} once listening.
const S3rver = require("s3rver");
const [directory, ...buckets] = process.argv.slice(2);
const server = new S3rver({ port: 0, address: "127.0.0.1", silent: process.env.COFFER_S3_LOG !== "1", directory, configureBuckets: buckets.map((name) => ({ name })) });
server.run().then(({ port }) => process.stdout.write(JSON.stringify({ port }) + "\n"));
process.on("SIGTERM", () => server.close().then(() => process.exit(0)));
