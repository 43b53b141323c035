import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  poweredByHeader: false,
  // forbidden() gives member requests to admin pages a real 403.
  experimental: { authInterrupts: true },
  serverExternalPackages: ["better-sqlite3"],
};

export default nextConfig;
