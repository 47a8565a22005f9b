/**
 * Where the project's files are at run time: from the sources (`lib/`, run with tsx) or from the compiled server
 * (`dist/lib/`, in the container image), the root is the directory that holds `public/`.
 */
import { existsSync } from "node:fs";
import path from "node:path";

export const PROJECT_ROOT =
  [path.resolve(__dirname, ".."), path.resolve(__dirname, "..", "..")].find((dir) =>
    existsSync(path.join(dir, "public")),
  ) ?? path.resolve(__dirname, "..");

/** The gateway's own pages (the API docs). */
export const PUBLIC_DIR = path.join(PROJECT_ROOT, "public");
/** The web console as Vite builds it. */
export const UI_DIR = path.join(PROJECT_ROOT, "dist", "ui");
