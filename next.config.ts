import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  poweredByHeader: false,
  // forbidden() gives member requests to admin pages a real 403.
  experimental: { authInterrupts: true },
  serverExternalPackages: ["better-sqlite3"],
  // Coffer shows no optimised images; the container image leaves sharp out (scripts/runtime-tree.mjs).
  images: { unoptimized: true },
};

export default nextConfig;
