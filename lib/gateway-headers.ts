/** The headers the gateway sets on every answer, and its CORS policy: both follow the node's configuration. */
import type { CorsOptions } from "moleculer-web";
import type { Config } from "./config";

/** What a browser is told on every answer; production also insists on HTTPS (it is served behind TLS). */
export function securityHeaders(cfg: Config): Record<string, string> {
  return {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy":
      "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    ...(cfg.isProduction ? { "Strict-Transport-Security": "max-age=31536000; includeSubDomains" } : {}),
  };
}

/** Cross-origin access to `/api` for the origins `CORS_ORIGINS` lists; none without them (same origin only). */
export function corsOptions(cfg: Config): CorsOptions | undefined {
  if (cfg.corsOrigins.length === 0) return undefined;
  return {
    origin: cfg.corsOrigins.includes("*") ? "*" : [...cfg.corsOrigins],
    methods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
    allowedHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-Id"],
    exposedHeaders: ["X-Request-Id", "Retry-After", "Location"],
    maxAge: 600,
  };
}
