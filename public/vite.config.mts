/**
 * Builds the web console from this folder into dist/ui, which the gateway serves at `/`. `npm run ui:dev` serves it
 * with hot reload and sends `/api` to a gateway on localhost:3000.
 */
import { fileURLToPath } from "node:url";
import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react-swc";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

export default defineConfig({
  root,
  // Everything the UI needs is imported by its code; nothing is copied as is (public/docs is the gateway's).
  publicDir: false,
  plugins: [react(), tailwindcss()],
  build: {
    outDir: fileURLToPath(new URL("../dist/ui", import.meta.url)),
    emptyOutDir: true,
    // One chunk by design (~360 kB minified: React, React DOM, React Router and every page; bench/README.md says why).
    chunkSizeWarningLimit: 600,
  },
  server: { proxy: { "/api": "http://localhost:3000", "/health": "http://localhost:3000" } },
});
