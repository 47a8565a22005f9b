/**
 * The files the gateway serves: the web UI's index.html for the UI's client-side routes, and the API docs page with
 * the Swagger UI it loads.
 */
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { PUBLIC_DIR, UI_DIR } from "./paths";

/** The web UI is built by `npm run build` (or the first `npm start`) from `public/` into UI_DIR. */
const UI_INDEX = path.join(UI_DIR, "index.html");
/** Paths the UI's client-side routes never use: a miss there is a plain 404. */
const NOT_UI = /^\/(api|health|docs|oauth|\.well-known|assets)(\/|$)/;
const SWAGGER_UI_DIR = path.dirname(require.resolve("swagger-ui-dist/package.json"));

/** A route handler that sends one file, which browsers may keep for an hour. */
function sendFile(file: string, contentType: string) {
  return async (_req: IncomingMessage, res: ServerResponse) => {
    const body = await readFile(file);
    res.writeHead(200, { "Content-Type": contentType, "Cache-Control": "public, max-age=3600" });
    res.end(body);
  };
}

/** The `/docs` route's aliases: the API docs page and the Swagger UI it loads. */
export const DOCS_ALIASES = {
  "GET /": sendFile(path.join(PUBLIC_DIR, "docs", "index.html"), "text/html; charset=utf-8"),
  "GET /init.js": sendFile(path.join(PUBLIC_DIR, "docs", "init.js"), "text/javascript; charset=utf-8"),
  "GET /swagger-ui.css": sendFile(path.join(SWAGGER_UI_DIR, "swagger-ui.css"), "text/css; charset=utf-8"),
  "GET /swagger-ui-bundle.js": sendFile(
    path.join(SWAGGER_UI_DIR, "swagger-ui-bundle.js"),
    "text/javascript; charset=utf-8",
  ),
};

/**
 * The UI's routes (`/`, `/orders/…`) are client-side: a browser asking for a page that is no file gets the UI's
 * index.html, which routes it. API and other paths keep their JSON 404.
 */
export function wantsUiPage(req: IncomingMessage, urlPath: string): boolean {
  const wantsPage = (req.method === "GET" || req.method === "HEAD") && /text\/html/.test(req.headers.accept ?? "");
  return wantsPage && !NOT_UI.test(urlPath);
}

/** Sends the UI's index.html, revalidated every time; 503 while the UI is not built. */
export function sendUiIndex(req: IncomingMessage, res: ServerResponse): void {
  readFile(UI_INDEX).then(
    (body) => {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache" });
      res.end(req.method === "HEAD" ? undefined : body);
    },
    () => {
      res.writeHead(503, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("The web UI is not built: run `npm run build` (npm start builds it on first start).\n");
    },
  );
}
