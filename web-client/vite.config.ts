import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";

// `npm run dev` serves on 3001 and proxies the API (REST, grpc-web, /health) to the crmbet
// server, so the page calls its own origin as in production. CRMBET_API moves the target.
const apiTarget = process.env.CRMBET_API ?? "http://127.0.0.1:3000";

export default defineConfig({
  plugins: [react(), tailwindcss()],
  server: {
    port: 3001,
    strictPort: true,
    proxy: {
      "^/(api/|health$|crmbet\\.v1\\.|grpc\\.)": { target: apiTarget },
    },
  },
  build: {
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
});
