/**
 * api: the gateway (moleculer-web). It authenticates (access tokens verified against the auth service's JWKS),
 * maps REST routes from the `rest:` of every action in the cluster, applies rate limits, writes the access log, and
 * serves health, the OAuth2 token endpoint, the JWKS, the live log tail (server-sent events) and the UI.
 * Authorization is not here: the permissions
 * middleware checks every call on the node that runs it. Business rules live in the services.
 */
import { randomUUID, type KeyObject } from "node:crypto";
import type { BlockList } from "node:net";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import path from "node:path";
import ApiGateway, { type ApiSettingsSchema } from "moleculer-web";
import packageJson from "../package.json";
import {
  Errors,
  type ActionSchema,
  type CallingOptions,
  type Context,
  type Service,
  type ServiceSchema,
} from "moleculer";
import { parseBasicCredentials } from "../lib/basic-credentials";
import { clientAddress, parseTrustedProxies } from "../lib/client-address";
import { normalizeEmail } from "../lib/account-input";
import { SERVICE_NAMES, config } from "../lib/config";
import { COOKIE_SESSION, SESSION_MODE_HEADER, refreshCookie, refreshTokenFromCookies } from "../lib/session-cookie";
import { PUBLIC_DIR, UI_DIR } from "../lib/paths";
import {
  MalformedJsonError,
  OAuthError,
  RateLimitedError,
  PayloadTooLargeError,
  UnreadableBodyError,
  UnsupportedMediaTypeError,
  ServiceUnavailableError,
  UnauthorizedError,
  nameUnknownFields,
} from "../lib/errors";
import { clientInputProblem } from "../lib/client-input";
import { readFile } from "node:fs/promises";
import type { ReadinessCheck } from "../lib/health";
import { buildOpenApi, type RouteInfo } from "../lib/openapi";
import type { ListShape } from "../lib/paging";
import { asSystem, permissionsOfRoles, type Caller, type PermissionDeclaration } from "../lib/permissions";
import { MemoryRateLimitStore, RedisRateLimitStore, type RateLimitStore, type WindowCount } from "../lib/rate-limit";
import { RevocationList, subjectOf, type Revocation } from "../lib/revocation";
import {
  publicKeyObject,
  tokenKeyId,
  verifyAccessToken,
  type PublicJwk,
  type VerifiedClaims,
} from "../lib/signing-keys";
import { VerifiedTokenCache } from "../lib/token-cache";
import type { CallerMeta } from "../middlewares/permissions.middleware";
import type { GatewayMeta } from "../lib/gateway-meta";
import type { OAuthMeta } from "./auth.service";
import { dashboardMixin, type DashboardMethods } from "../mixins/dashboard.mixin";
import type { LogPage, LogTailPage } from "./logs.service";
import type { OrderWithSaga } from "./orders.service";
import { openEventStream, type EventStream } from "../lib/event-stream";

type GatewayRequest = IncomingMessage & {
  $ctx?: Context<unknown, CallerMeta>;
  $alias?: { action?: string };
  /** The URL as the client sent it (moleculer-web strips the route's prefix from `url` once a route matches). */
  originalUrl?: string;
  /** The action being called (moleculer-web sets it before the call). */
  $action?: ActionSchema;
  /** The request's parameters: body, query and path merged (moleculer-web sets it before `onBeforeCall`). */
  $params?: Record<string, unknown>;
  $startedAt?: number;
  $requestId?: string;
  /** The client's own `X-Request-Id`, kept for the access log; never the request's id. */
  $clientRequestId?: string;
  /** The client's address, worked out once per request (`clientOf`). */
  $client?: string;
  /** The verified access token's subject, generation and expiry (ms), for streams that outlive the request. */
  $token?: AccessTokenInfo;
};

interface AccessTokenInfo {
  subject: string;
  generation: number;
  expiresAt: number;
}

interface ErrorBody {
  name: string;
  message: string;
  code: number;
  type: string;
  data?: unknown;
}

const cfg = config();
/** moleculer-web's own handlers, which ours wrap. */
const gateway = (
  ApiGateway as unknown as { methods: Record<"httpHandler" | "sendError" | "send404", (...args: unknown[]) => unknown> }
).methods;
const MINUTE = 60_000;
/**
 * Endpoints that take credentials get the stricter per-IP limit. Not the refresh: a refresh token cannot be guessed
 * (256 random bits), and the console refreshes on every reload and in every tab; under this limit, a few reloads
 * ended sessions. It has the per-IP limit of every request.
 */
const CREDENTIAL_ACTIONS = new Set(["auth.login", "auth.register", "auth.changePassword", "auth.oauthToken"]);
/** How long an account's failed sign-ins count against it. */
const ACCOUNT_WINDOW_MS = 15 * MINUTE;

/** The account a sign-in is for, in the form auth compares e-mail addresses in. */
function loginAccountOf(req: GatewayRequest): string {
  const email = (req.$params as { email?: unknown } | undefined)?.email;
  return typeof email === "string" ? normalizeEmail(email) : "";
}

/** Their answers carry tokens: no cache may keep them (RFC 6749 §5.1). */
const TOKEN_ACTIONS = new Set(["auth.login", "auth.refresh", "auth.changePassword"]);
/** Actions that take a refresh token, which a cookie session sends as its cookie (lib/session-cookie.ts). */
const REFRESH_TOKEN_ACTIONS = new Set(["auth.refresh", "auth.logout"]);

const wantsCookieSession = (req: GatewayRequest) => req.headers[SESSION_MODE_HEADER] === COOKIE_SESSION;

/** A cookie session's refresh or sign-out: its cookie stands for the refresh token the body does not carry. */
function takeRefreshTokenFromCookie(req: GatewayRequest): void {
  const action = req.$alias?.action;
  if (!action || !REFRESH_TOKEN_ACTIONS.has(action) || !wantsCookieSession(req)) return;
  const params = req.$params as { refreshToken?: unknown };
  if (params.refreshToken !== undefined) return;
  const token = refreshTokenFromCookies(req.headers.cookie);
  if (token === undefined) throw new UnauthorizedError("This browser holds no session", "INVALID_TOKEN");
  params.refreshToken = token;
}

/** A cookie session's new tokens: the refresh token goes into the cookie, not the body; a sign-out removes it. */
function giveRefreshTokenAsCookie(req: GatewayRequest, res: ServerResponse, data: unknown): unknown {
  const action = req.$alias?.action;
  if (!action || !wantsCookieSession(req)) return data;
  if (action === "auth.logout") res.setHeader("Set-Cookie", refreshCookie(null, 0));
  if (!TOKEN_ACTIONS.has(action)) return data;
  const { refreshToken, ...rest } = data as { refreshToken: string };
  res.setHeader("Set-Cookie", refreshCookie(refreshToken, cfg.auth.refreshTokenTtl));
  return rest;
}
const ANONYMOUS: Caller = Object.freeze({ type: "anonymous" });
const JWKS_TTL_MS = 5 * MINUTE;
const JWKS_MIN_REFRESH_MS = 5_000;
const ROLES_TTL_MS = 30_000;
/**
 * Revocations arrive as `auth.tokens.revoked` events; the gateway also reloads the list this often, in case it missed
 * one (it was reconnecting), and before its first verified token.
 */
const REVOCATIONS_RESYNC_MS = 10_000;
/** The live log tail asks the log store for new records this often; an order's stream asks for the order this often. */
const TAIL_POLL_MS = 1000;
const ORDER_POLL_MS = 1000;
const TAIL_PAGE = 200;
/** Requests that last: no request timeout for them (their calls to the services have theirs). */
const STREAM_PATHS = [/^\/api\/logs\/stream$/, /^\/api\/orders\/[^/]+\/stream$/];
const ORDER_FINAL = new Set(["COMPLETED", "CANCELLED", "COMPENSATED", "FAILED"]);
const SAGA_FINAL = new Set(["COMPLETED", "COMPENSATED", "FAILED"]);
const TAIL_FILTERS = ["level", "service", "node", "requestId", "search"] as const;

const SECURITY_HEADERS: Record<string, string> = {
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Content-Security-Policy":
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
  ...(cfg.isProduction ? { "Strict-Transport-Security": "max-age=31536000; includeSubDomains" } : {}),
};

/** The web UI is built by `npm run build` (or the first `npm start`) from `public/` into UI_DIR. */
const UI_INDEX = path.join(UI_DIR, "index.html");
/** Paths the UI's client-side routes never use: a miss there is a plain 404. */
const NOT_UI = /^\/(api|health|docs|oauth|\.well-known|assets)(\/|$)/;
const SWAGGER_UI_DIR = path.dirname(require.resolve("swagger-ui-dist/package.json"));
const VERSION = packageJson.version;

/** A route handler that sends one file, for the API docs page and the Swagger UI it loads. */
function sendFile(file: string, contentType: string) {
  return async (_req: IncomingMessage, res: ServerResponse) => {
    const body = await readFile(file);
    res.writeHead(200, { "Content-Type": contentType, "Cache-Control": "public, max-age=3600" });
    res.end(body);
  };
}

/** A client's `X-Request-Id` is logged (as `clientRequestId`) only if it is short and plain, so it cannot forge log lines. */
const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The largest JSON body `/api` takes. */
const BODY_LIMIT = "1mb";

const HTTP_METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);

interface RouteAction {
  params?: Record<string, unknown>;
  permissions?: PermissionDeclaration;
  status?: number;
  list?: ListShape;
}

interface ApiState {
  /** moleculer-web's route table. */
  aliases: {
    action?: unknown;
    method: string;
    fullPath: string;
    route?: { opts?: { bodyParsers?: { urlencoded?: unknown } } };
  }[];
  /** moleculer-web's HTTP server. */
  server?: Server;
  localServicesStarted: boolean;
  /** Whether the `/api` routes have been generated from the cluster's actions since this node started. */
  routesGenerated: boolean;
  /** moleculer-web's debounced route regeneration. */
  regenerateAllAutoAliases(): void;
  rateLimits: RateLimitStore;
  /** Counts while the shared store is unreachable. */
  fallbackLimits: RateLimitStore;
  fallbackWarnedAt?: number;
  trustedProxies: BlockList;
  /** The auth service's verification keys, as key objects by `kid`. */
  jwks: { keys: Map<string, KeyObject>; fetchedAt: number; pending?: Promise<void> };
  verifiedTokens: VerifiedTokenCache;
  roles: { table?: Record<string, string[]>; fetchedAt: number };
  revocations: { list: RevocationList; syncedAt: number; attemptedAt: number; pending?: Promise<void> };
  /** Open event streams (log tails, order progress), ended when the node stops taking requests. */
  tails: Set<() => void>;
}

interface ApiMethods {
  httpHandler(req: GatewayRequest, res: ServerResponse, next?: (err?: unknown) => void): unknown;
  sendError(req: GatewayRequest, res: ServerResponse, err: Error): void;
  errorHandler(req: GatewayRequest, res: ServerResponse, err: Error): void;
  send404(req: GatewayRequest, res: ServerResponse): void;
  readinessChecks(): Promise<ReadinessCheck[]>;
  stopIntake(): void;
  serviceRouted(service: string): boolean;
  limit(name: string, key: string, perMinute: number): Promise<void>;
  limitWindow(read: (store: RateLimitStore) => Promise<WindowCount>): Promise<WindowCount>;
  refuseLockedOutLogin(req: GatewayRequest): Promise<void>;
  countLoginFailure(req: GatewayRequest): Promise<void>;
  clientOf(req: GatewayRequest): string;
  publicKey(kid: string, ctx: Context): Promise<KeyObject | undefined>;
  rolePermissions(ctx: Context): Promise<Record<string, string[]>>;
  callerFromToken(token: string, ctx: Context): Promise<{ caller: Caller; token: AccessTokenInfo }>;
  verifyToken(token: string, ctx: Context): Promise<VerifiedClaims>;
  syncRevocations(ctx: Context): Promise<void>;
  tailLogs(req: GatewayRequest, res: ServerResponse): Promise<void>;
  streamOrder(req: GatewayRequest, res: ServerResponse): Promise<void>;
  openStream(
    req: GatewayRequest,
    res: ServerResponse,
    pollMs: number,
    poll: (stream: EventStream) => Promise<void>,
  ): void;
}

type ApiThis = Service<ApiSettingsSchema> & ApiState & ApiMethods & DashboardMethods;

/**
 * Errors that reach the client in a shape of their own made into ours: Moleculer says 404 when no endpoint of an
 * existing route's action can take calls (none running, its circuit breaker open, or its node gone since the routes
 * were built: SERVICE_NOT_FOUND), where for the client the route exists and the service is unavailable for now; the body parser's errors have dotted lowercase types.
 */
function errorForClient(error: Error, req: GatewayRequest): Error {
  const { code, type } = error as Errors.MoleculerError;
  if (type === "SERVICE_NOT_AVAILABLE" || type === "SERVICE_NOT_FOUND") {
    const action = req.$alias?.action;
    return new ServiceUnavailableError({ service: action?.split(".")[0] ?? "addressed", action });
  }
  if (code === 413) return new PayloadTooLargeError(BODY_LIMIT);
  // The body parser's own errors (dotted types such as `entity.parse.failed`) become ours, in the one error shape.
  if (typeof type === "string" && type.includes(".") && code >= 400 && code < 500) {
    if (type === "entity.parse.failed") return new MalformedJsonError(error.message);
    if (code === 415) return new UnsupportedMediaTypeError(error.message, {});
    return new UnreadableBodyError(error.message, type.replace(/\./g, "_").toUpperCase());
  }
  return error;
}

/** Throws the gateway's answer to parameters no service could take (too deep, too many values, unstorable text). */
function refuseUnstorableInput(req: GatewayRequest) {
  const problem = clientInputProblem(req.$params);
  if (problem) throw problem;
}

/**
 * The RFC 6749 error body for the token endpoint, for its own errors and for anything else that goes wrong there.
 */
function sendOAuthError(req: GatewayRequest, res: ServerResponse, error: Error) {
  const err = error as Errors.MoleculerError;
  const oauth = err instanceof OAuthError || (err.data as { error?: string } | undefined)?.error !== undefined;
  const body = oauth
    ? (err.data as { error: string; error_description: string })
    : err.code === 422 || err.code === 400
      ? { error: "invalid_request", error_description: err.message }
      : { error: "server_error", error_description: "The token endpoint failed" };
  const status = oauth
    ? err.code
    : body.error === "invalid_request"
      ? 400
      : err.code >= 400 && err.code < 600
        ? err.code
        : 500;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Cache-Control", "no-store");
  if (status === 401 && req.headers.authorization?.startsWith("Basic ")) {
    res.setHeader("WWW-Authenticate", 'Basic realm="aicunet"');
  }
  res.writeHead(status);
  res.end(JSON.stringify(body));
}

/**
 * Health probes and the JWKS are public and cost the node work (every database pinged, the key set assembled): each
 * client address gets RATE_LIMIT_PROBE of them a minute, counted in this gateway's memory so a probe costs no round
 * trip.
 */
async function limitProbe(this: ApiThis, _ctx: Context, _route: unknown, req: GatewayRequest) {
  const count = await this.fallbackLimits.hit(`probe:ip:${this.clientOf(req)}`, MINUTE);
  if (count.count > cfg.rateLimits.probe) {
    throw new RateLimitedError("probe", Math.max(1, Math.ceil(count.resetInMs / 1000)));
  }
}

const ApiService: ServiceSchema<ApiSettingsSchema, ApiMethods & DashboardMethods, ApiState> = {
  name: "api",
  mixins: [ApiGateway as unknown as Partial<ServiceSchema>, dashboardMixin()],

  settings: {
    port: cfg.port,
    ip: "0.0.0.0",
    // The access log below replaces moleculer-web's own per-request lines, and the route table (printed again on
    // every change of the service registry) is for debugging.
    log4XXResponses: false,
    logRouteRegistration: "debug",
    logRequest: "debug",
    // Never log request parameters, at any level: they hold passwords and refresh tokens, and logs are shipped to the
    // log store that operators read.
    logRequestParams: null,
    // A live log tail is one request that lasts: no request timeout for it (its calls to the log store have theirs).
    // moleculer-web takes a function here too; its typings know only the object form.
    rootCallOptions: ((options: CallingOptions, req: IncomingMessage) => {
      const path = req.url?.split("?")[0] ?? "";
      if (STREAM_PATHS.some((pattern) => pattern.test(path))) options.timeout = 0;
    }) as unknown as CallingOptions,
    logResponse: "debug",
    routes: [
      {
        path: "/health",
        mappingPolicy: "restrict",
        bodyParsers: false,
        aliases: { "GET /live": "health.live", "GET /ready": "health.ready" },
        onBeforeCall: limitProbe,
      },
      {
        path: "/.well-known",
        mappingPolicy: "restrict",
        bodyParsers: false,
        aliases: { "GET /jwks.json": "auth.jwks" },
        onBeforeCall: limitProbe,
      },
      {
        path: "/oauth",
        mappingPolicy: "restrict",
        bodyParsers: { json: false, urlencoded: { extended: false, limit: "16kb" } },
        aliases: { "POST /token": "auth.oauthToken" },
        async onBeforeCall(
          this: ApiThis,
          ctx: Context<unknown, OAuthMeta & CallerMeta>,
          _route: unknown,
          req: GatewayRequest,
          res: ServerResponse,
        ) {
          ctx.meta.caller = ANONYMOUS;
          refuseUnstorableInput(req);
          await this.limit("auth", `auth.oauthToken:ip:${this.clientOf(req)}`, cfg.rateLimits.auth);
          res.setHeader("Cache-Control", "no-store");
          const header = req.headers.authorization;
          if (header?.startsWith("Basic ")) ctx.meta.basicAuth = parseBasicCredentials(header.slice(6));
        },
        onError: sendOAuthError,
      },
      {
        path: "/docs",
        mappingPolicy: "restrict",
        bodyParsers: false,
        aliases: {
          "GET /": sendFile(path.join(PUBLIC_DIR, "docs", "index.html"), "text/html; charset=utf-8"),
          "GET /init.js": sendFile(path.join(PUBLIC_DIR, "docs", "init.js"), "text/javascript; charset=utf-8"),
          "GET /swagger-ui.css": sendFile(path.join(SWAGGER_UI_DIR, "swagger-ui.css"), "text/css; charset=utf-8"),
          "GET /swagger-ui-bundle.js": sendFile(
            path.join(SWAGGER_UI_DIR, "swagger-ui-bundle.js"),
            "text/javascript; charset=utf-8",
          ),
        },
      },
      {
        path: "/api",
        aliases: {
          "GET /openapi.json": "api.openapi",
          "GET /dashboard": "api.dashboard",
          // moleculer-web ignores what a custom handler returns: errors before a stream starts go to `next`.
          "GET /logs/stream"(this: ApiThis, req: GatewayRequest, res: ServerResponse, next: (err?: unknown) => void) {
            this.tailLogs(req, res).catch(next);
          },
          "GET /orders/:id/stream"(
            this: ApiThis,
            req: GatewayRequest,
            res: ServerResponse,
            next: (err?: unknown) => void,
          ) {
            this.streamOrder(req, res).catch(next);
          },
        },
        /**
         * Refuses input no service could store (lib/client-input.ts), then hands the headers that carry request
         * semantics to the action; the action decides what they mean.
         */
        onBeforeCall(ctx: Context<unknown, GatewayMeta>, _route: unknown, req: GatewayRequest, res: ServerResponse) {
          refuseUnstorableInput(req);
          if (req.$alias?.action && TOKEN_ACTIONS.has(req.$alias.action)) res.setHeader("Cache-Control", "no-store");
          takeRefreshTokenFromCookie(req);
          const ifMatch = req.headers["if-match"];
          const idempotencyKey = req.headers["idempotency-key"];
          if (typeof ifMatch === "string") ctx.meta.ifMatch = ifMatch;
          if (typeof idempotencyKey === "string") ctx.meta.idempotencyKey = idempotencyKey;
        },
        /** The status the action declares for success (`status`), unless its handler chose one. */
        onAfterCall(
          ctx: Context<unknown, GatewayMeta>,
          _route: unknown,
          req: GatewayRequest,
          res: ServerResponse,
          data: unknown,
        ) {
          ctx.meta.$statusCode ??= req.$action?.status;
          return giveRefreshTokenAsCookie(req, res, data);
        },
        autoAliases: true,
        mappingPolicy: "restrict",
        authentication: true,
        bodyParsers: { json: { limit: BODY_LIMIT, strict: true }, urlencoded: false },
        ...(cfg.corsOrigins.length > 0
          ? {
              cors: {
                origin: cfg.corsOrigins.includes("*") ? "*" : cfg.corsOrigins,
                methods: ["GET", "POST", "PUT", "PATCH", "DELETE"],
                allowedHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-Id"],
                exposedHeaders: ["X-Request-Id", "Retry-After", "Location"],
                maxAge: 600,
              },
            }
          : {}),
      },
    ],
    // Built files are content-hashed under /assets (cached for long); index.html is revalidated every time.
    assets: { folder: UI_DIR, options: { index: false, maxAge: "1y", immutable: true } },
  },

  actions: {
    // moleculer-web's entry point for every HTTP request; callers are identified inside it. The calls it makes have
    // their own retries and breakers: retried itself (on a retryable error from them), it re-ran on a request already
    // routed, answering 404; a breaker of its own would take the whole gateway away.
    rest: {
      permissions: "public",
      retryPolicy: { enabled: false },
      circuitBreaker: { enabled: false },
      // One span per request, the routed action's, which roots the trace: a span of the HTTP entry as well cost about
      // a sixth of an authenticated request (bench/README.md). Method, URL, status and time are in the access log.
      tracing: false,
      // Likewise one set of request metrics: the routed action's, beside the gateway's own HTTP counter and histogram.
      metrics: false,
    },
    // moleculer-web's route listing is not part of the public API.
    listAliases: false,

    /** The OpenAPI 3.1 document of every route the gateway serves now, generated from the actions. Public. */
    openapi: {
      permissions: "public",
      handler(): Record<string, unknown> {
        const actions = new Map(
          (this.broker.registry.getActionList({}) as unknown as { name: string; action?: RouteAction }[]).map(
            (item) => [item.name, item.action],
          ),
        );
        const routes: RouteInfo[] = this.aliases
          .filter((alias) => typeof alias.action === "string" && HTTP_METHODS.has(alias.method))
          .map((alias) => {
            const action = actions.get(alias.action as string);
            return {
              method: alias.method,
              path: alias.fullPath,
              action: alias.action as string,
              params: action?.params,
              permissions: action?.permissions,
              status: action?.status,
              list: action?.list,
              // The token endpoint's route parses form bodies (RFC 6749), the others JSON.
              bodyType: alias.route?.opts?.bodyParsers?.urlencoded ? "form" : "json",
            };
          });
        return buildOpenApi(routes, { title: "AiCUnet API", version: VERSION });
      },
    },
  },

  events: {
    /**
     * moleculer-web builds the `/api` routes ~0.5 s after services change; until then new routes 404. Routes count
     * as generated once they have been built after every local service started.
     */
    "$broker.started"() {
      this.localServicesStarted = true;
      this.regenerateAllAutoAliases();
    },
    "$api.aliases.regenerated"(ctx: Context) {
      if (ctx.nodeID === this.broker.nodeID && this.localServicesStarted) this.routesGenerated = true;
    },
    "auth.roles.changed"() {
      this.roles = { fetchedAt: 0 };
    },
    "auth.keys.rotated"() {
      this.jwks.fetchedAt = 0;
    },
    "auth.tokens.revoked"(ctx: Context<Revocation>) {
      this.revocations.list.apply(ctx.params);
    },
  },

  created() {
    this.localServicesStarted = false;
    this.routesGenerated = false;
    this.jwks = { keys: new Map(), fetchedAt: 0 };
    this.verifiedTokens = new VerifiedTokenCache(cfg.auth.tokenCacheSize);
    this.roles = { fetchedAt: 0 };
    this.revocations = { list: new RevocationList(cfg.auth.accessTokenTtl * 1000), syncedAt: 0, attemptedAt: 0 };
    this.tails = new Set();
    this.rateLimits = cfg.redisUrl
      ? new RedisRateLimitStore(cfg.redisUrl, `${cfg.namespace}:ratelimit:`)
      : new MemoryRateLimitStore();
    this.fallbackLimits = new MemoryRateLimitStore();
    this.trustedProxies = parseTrustedProxies(cfg.trustedProxies);
  },

  async stopped() {
    // The requests in flight at stopIntake have finished (or outlasted SHUTDOWN_TIMEOUT): their connections, now idle,
    // would otherwise stay open for the keep-alive timeout, holding clients (and this process) on a stopped gateway.
    this.server?.closeAllConnections();
    await Promise.all([this.rateLimits.close(), this.fallbackLimits.close()]);
  },

  methods: {
    /**
     * Every HTTP request passes here first (moleculer-web's handler follows): a new request id that moleculer-web
     * turns into `ctx.requestID` and the response echoes in `X-Request-Id`, security headers, the access log line,
     * and 415 for a body on `/api` that is not JSON.
     */
    httpHandler(req: GatewayRequest, res: ServerResponse, next?: (err?: unknown) => void) {
      req.$startedAt = performance.now();
      // moleculer-web later strips the route's prefix from req.url.
      const path = req.url?.split("?")[0];
      // The request's id (the trace and correlation id of all its work) is always ours: a client that chose it could
      // join its requests to another caller's trail. The client's own value is logged beside it.
      const incoming = req.headers["x-request-id"];
      if (typeof incoming === "string" && SAFE_REQUEST_ID.test(incoming)) req.$clientRequestId = incoming;
      const requestId = randomUUID();
      req.headers["x-request-id"] = requestId;
      delete req.headers["x-correlation-id"];
      req.$requestId = requestId;
      res.setHeader("X-Request-Id", requestId);
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
      res.once("finish", () => {
        const caller = req.$ctx?.meta.caller;
        const durationMs = Math.round((performance.now() - req.$startedAt!) * 10) / 10;
        // An event stream's duration is how long someone watched, not how fast we answered.
        const streamed = String(res.getHeader("content-type") ?? "").startsWith("text/event-stream");
        if (!streamed) this.recordHttp(res.statusCode, durationMs);
        this.logger.info(
          {
            method: req.method,
            path,
            status: res.statusCode,
            durationMs,
            callerId: caller && "id" in caller ? caller.id : null,
            client: this.clientOf(req),
            requestId,
            ...(req.$clientRequestId ? { clientRequestId: req.$clientRequestId } : {}),
          },
          "access",
        );
      });
      const hasBody = Number(req.headers["content-length"] ?? 0) > 0 || req.headers["transfer-encoding"] !== undefined;
      const isJson = /^application\/(.+\+)?json\b/i.test(req.headers["content-type"] ?? "");
      if (req.url?.startsWith("/api/") && hasBody && !isJson) {
        const contentType = req.headers["content-type"] ?? null;
        return this.sendError(
          req,
          res,
          new UnsupportedMediaTypeError("Request bodies must be application/json", { contentType }),
        );
      }
      return gateway.httpHandler.call(this, req, res, next);
    },

    /**
     * Identifies the caller of an `/api` request: anonymous without a token, 401 for a token that does not verify.
     * Applies the per-IP, per-caller and credential-endpoint rate limits.
     */
    async authenticate(ctx: Context<unknown, CallerMeta>, _route: unknown, req: GatewayRequest) {
      const ip = this.clientOf(req);
      const action = req.$alias?.action;
      await this.limit("ip", `ip:${ip}`, cfg.rateLimits.perIp);
      if (action === "auth.login") await this.refuseLockedOutLogin(req);
      else if (action && CREDENTIAL_ACTIONS.has(action))
        await this.limit("auth", `${action}:ip:${ip}`, cfg.rateLimits.auth);
      const header = req.headers.authorization;
      if (!header) {
        ctx.meta.caller = ANONYMOUS;
        return null;
      }
      const bearer = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(header);
      if (!bearer) throw new UnauthorizedError("The Authorization header must be 'Bearer <token>'", "INVALID_TOKEN");
      const { caller, token } = await this.callerFromToken(bearer[1], ctx);
      req.$token = token;
      ctx.meta.caller = caller;
      if ("id" in caller) await this.limit("user", `caller:${caller.id}`, cfg.rateLimits.perUser);
      return caller;
    },

    /**
     * The caller a token stands for, and the token's subject, generation and expiry. 401 for a token that does not
     * verify, has no expiry, or was revoked (its subject was disabled or changed after it was issued: lib/revocation.ts).
     */
    async callerFromToken(token: string, ctx: Context): Promise<{ caller: Caller; token: AccessTokenInfo }> {
      // Verified before, and its key is still published: the signature needs no second check.
      const cached = this.verifiedTokens.get(token);
      let claims = cached && (await this.publicKey(cached.kid, ctx)) ? cached.claims : undefined;
      if (!claims) claims = await this.verifyToken(token, ctx);
      const info = {
        subject: subjectOf(claims.typ === "client" ? "client" : "user", claims.sub),
        generation: claims.gen ?? 0,
        expiresAt: claims.exp * 1000,
      };
      await this.syncRevocations(ctx);
      if (this.revocations.list.refuses(info.subject, info.generation)) {
        throw new UnauthorizedError("The token has been revoked", "INVALID_TOKEN", { reason: "revoked" });
      }
      if (claims.typ === "client") {
        const permissions = (claims.scope ?? "").split(" ").filter(Boolean);
        return { caller: { type: "client", id: claims.sub, permissions }, token: info };
      }
      const roles = claims.roles ?? [];
      const permissions = permissionsOfRoles(roles, await this.rolePermissions(ctx));
      return { caller: { type: "user", id: claims.sub, roles, permissions }, token: info };
    },

    /**
     * Reloads the revocation list from the auth service when it is older than `REVOCATIONS_RESYNC_MS`: waited for when
     * the gateway has never loaded it (a fresh gateway knows nothing of earlier revocations), in the background after
     * that (events keep it current; a failed reload keeps the list it has and says so).
     */
    async syncRevocations(ctx: Context): Promise<void> {
      const revocations = this.revocations;
      const loaded = revocations.syncedAt > 0;
      // Once loaded, a failed reload is tried again after the same interval, not on every request.
      if (Date.now() - Math.max(revocations.syncedAt, loaded ? revocations.attemptedAt : 0) < REVOCATIONS_RESYNC_MS) {
        return;
      }
      if (!revocations.pending) {
        revocations.attemptedAt = Date.now();
        revocations.pending = this.broker
          .call<Revocation[], Record<string, never>>("auth.revocations", {}, asSystem(ctx))
          .then((list) => {
            for (const revocation of list) revocations.list.apply(revocation);
            revocations.list.prune();
            revocations.syncedAt = Date.now();
          })
          .finally(() => {
            revocations.pending = undefined;
          });
        if (loaded) {
          revocations.pending.catch((err: Error) =>
            this.logger.warn(`Could not reload token revocations, keeping the list: ${err.message}`),
          );
        }
      }
      if (!loaded) await revocations.pending;
    },

    /**
     * Checks a token's signature (ES256, by the key its `kid` names), issuer, audience and expiry, and keeps the result
     * in the verified-token cache. 401 for a token that does not verify.
     */
    async verifyToken(token: string, ctx: Context): Promise<VerifiedClaims> {
      const kid = tokenKeyId(token);
      const key = kid ? await this.publicKey(kid, ctx) : undefined;
      if (!kid || !key) throw new UnauthorizedError("The token is not signed by a known key", "INVALID_TOKEN");
      try {
        const claims = verifyAccessToken(token, key, { issuer: cfg.auth.issuer, audience: cfg.auth.audience });
        this.verifiedTokens.set(token, { kid, claims });
        return claims;
      } catch (err) {
        const expired = (err as Error).name === "TokenExpiredError";
        throw new UnauthorizedError(
          expired ? "The token has expired" : `Invalid token: ${(err as Error).message}`,
          "INVALID_TOKEN",
          { reason: expired ? "expired" : "invalid" },
        );
      }
    },

    /** A verification key by id from the auth service's JWKS, cached; an unknown id refreshes the cache (throttled). */
    async publicKey(kid: string, ctx: Context): Promise<KeyObject | undefined> {
      const jwks = this.jwks;
      const stale = Date.now() - jwks.fetchedAt > JWKS_TTL_MS;
      const unknownAndRefreshable = !jwks.keys.has(kid) && Date.now() - jwks.fetchedAt > JWKS_MIN_REFRESH_MS;
      if (stale || unknownAndRefreshable) {
        jwks.pending ??= this.broker
          .call<{ keys: PublicJwk[] }, Record<string, never>>("auth.jwks", {}, asSystem(ctx))
          .then((result) => {
            const keys = new Map(result.keys.map((jwk) => [jwk.kid, publicKeyObject(jwk)]));
            this.jwks = { keys, fetchedAt: Date.now() };
          })
          .finally(() => {
            jwks.pending = undefined;
          });
        await jwks.pending;
      }
      return this.jwks.keys.get(kid);
    },

    async rolePermissions(ctx: Context): Promise<Record<string, string[]>> {
      if (!this.roles.table || Date.now() - this.roles.fetchedAt > ROLES_TTL_MS) {
        const table = await this.broker.call<Record<string, string[]>, Record<string, never>>(
          "auth.rolePermissions",
          {},
          asSystem(ctx),
        );
        this.roles = { table, fetchedAt: Date.now() };
      }
      return this.roles.table!;
    },

    /**
     * `GET /api/logs/stream`: the log store's new records as server-sent events (`event: log`, `id:` the record id),
     * with the filters of `GET /api/logs`. The first query runs before the stream starts, so a caller without
     * `logs:read` or a bad filter gets its 401/403/422. A client that reconnects with `Last-Event-ID` continues after
     * that record; a stream ends when the access token expires or is revoked, so a revoked caller does not keep reading.
     */
    async tailLogs(req: GatewayRequest, res: ServerResponse): Promise<void> {
      const ctx = req.$ctx!;
      const query = new URLSearchParams(req.url?.split("?")[1] ?? "");
      const filters = Object.fromEntries(
        TAIL_FILTERS.filter((name) => query.has(name)).map((name) => [name, query.get(name)]),
      );
      const resumeFrom = req.headers["last-event-id"];
      const tail = (params: object) => ctx.call<LogTailPage, object>("logs.tail", { ...filters, ...params });
      let after: string;
      if (typeof resumeFrom === "string" && /^\d{1,15}$/.test(resumeFrom)) {
        after = resumeFrom;
        await tail({ after, pageSize: 1 });
      } else {
        const newest = await ctx.call<LogPage, object>("logs.list", { ...filters, pageSize: 1 });
        after = String(newest.rows[0]?.id ?? 0);
      }

      this.openStream(req, res, TAIL_POLL_MS, async (stream) => {
        // While the log store is away the stream says so and tries again; the client keeps its place.
        for (;;) {
          const page = await tail({ after, pageSize: TAIL_PAGE });
          for (const record of page.rows) stream.send("log", record, record.id);
          after = page.nextCursor;
          if (!page.hasMore) break;
        }
      });
    },

    /**
     * `GET /api/orders/:id/stream`: the order (with its saga and timeline) as server-sent events, sent when it changes
     * (`event: order`), until it and its saga have ended (`event: end`). The caller must be allowed to read the order.
     */
    async streamOrder(req: GatewayRequest, res: ServerResponse): Promise<void> {
      const ctx = req.$ctx!;
      const id = /^\/orders\/([^/?]+)\/stream/.exec(req.url ?? "")?.[1] ?? "";
      const read = () => ctx.call<OrderWithSaga, { id: string }>("orders.get", { id });
      let last = await read();
      let sent = "";
      const finished = (order: OrderWithSaga) =>
        ORDER_FINAL.has(order.status) && (!order.saga || SAGA_FINAL.has(order.saga.status));
      this.openStream(req, res, ORDER_POLL_MS, async (stream) => {
        if (sent !== "") last = await read();
        const fingerprint = JSON.stringify([last.status, last.version, last.saga?.status, last.saga?.timeline?.length]);
        if (fingerprint !== sent) {
          stream.send("order", last);
          sent = fingerprint;
        }
        if (finished(last)) {
          stream.send("end", { status: last.status });
          stream.end();
        }
      });
    },

    /**
     * A server-sent event stream that ends when the access token it was opened with expires (at its `exp`, not a
     * token lifetime after the stream opened) or is revoked, or when the node stops taking requests. The client
     * reconnects with a fresh token.
     */
    openStream(req: GatewayRequest, res: ServerResponse, pollMs: number, poll: (stream: EventStream) => Promise<void>) {
      const token = req.$token;
      const stream = openEventStream(req, res, {
        pollMs,
        maxMs: token ? token.expiresAt - Date.now() : cfg.auth.accessTokenTtl * 1000,
        poll: async (events) => {
          if (token && this.revocations.list.refuses(token.subject, token.generation)) return events.end();
          return poll(events);
        },
        onEnd: () => this.tails.delete(stream.end),
      });
      this.tails.add(stream.end);
    },

    /** The client's address: the socket's, or what trusted proxies put in `X-Forwarded-For` (lib/client-address.ts). */
    clientOf(req: GatewayRequest): string {
      req.$client ??= clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], this.trustedProxies);
      return req.$client;
    },

    /**
     * Counts a request against a limit; 429 with `Retry-After` when over it. While the shared store (Redis) is out,
     * each gateway counts in its own memory: the limit then holds per replica rather than not at all.
     */
    async limit(name: string, key: string, perMinute: number): Promise<void> {
      const count = await this.limitWindow((store) => store.hit(`${name}:${key}`, MINUTE));
      if (count.count > perMinute) throw new RateLimitedError(name, Math.max(1, Math.ceil(count.resetInMs / 1000)));
    },

    /** A window from the shared store, or from this gateway's own while the shared one is out. */
    async limitWindow(read: (store: RateLimitStore) => Promise<WindowCount>): Promise<WindowCount> {
      try {
        return await read(this.rateLimits);
      } catch (err) {
        if (Date.now() - (this.fallbackWarnedAt ?? 0) > MINUTE) {
          this.fallbackWarnedAt = Date.now();
          this.logger.warn(`Rate limit store unavailable, counting per gateway meanwhile: ${(err as Error).message}`);
        }
        return read(this.fallbackLimits);
      }
    },

    /**
     * Sign-ins are limited by their failures, not their number: per account from any address (a slow guess spread
     * over many addresses), and per address (one address guessing many accounts). A right password from an address
     * others share is not refused for their mistakes until that address's failures pass the limit.
     */
    async refuseLockedOutLogin(req: GatewayRequest) {
      const checks: [string, string, number][] = [
        ["auth", `login-failures:ip:${this.clientOf(req)}`, cfg.rateLimits.auth],
        ["account", `login-failures:account:${loginAccountOf(req)}`, cfg.rateLimits.loginAccount],
      ];
      for (const [name, key, limit] of checks) {
        const window = await this.limitWindow((store) => store.peek(key));
        if (window.count >= limit) {
          throw new RateLimitedError(name, Math.max(1, Math.ceil(window.resetInMs / 1000)));
        }
      }
    },

    /** Counts a failed sign-in against its address and its account. */
    async countLoginFailure(req: GatewayRequest) {
      await Promise.all([
        this.limitWindow((store) => store.hit(`login-failures:ip:${this.clientOf(req)}`, MINUTE)),
        this.limitWindow((store) => store.hit(`login-failures:account:${loginAccountOf(req)}`, ACCOUNT_WINDOW_MS)),
      ]);
    },

    /**
     * The UI's routes (`/`, `/orders/…`) are client-side: a browser asking for a page that is no file gets the UI's
     * index.html, which routes it. API and other paths keep their JSON 404.
     */
    send404(req: GatewayRequest, res: ServerResponse) {
      const path = (req.originalUrl ?? req.url)?.split("?")[0] ?? "/";
      // A service of the platform that is not running (its node killed or stopping) has no routes, not no resource:
      // that is 503 with `Retry-After`, naming the service, as while its breaker is open.
      const service = /^\/api\/([a-z]+)(?:\/|$)/.exec(path)?.[1];
      // So is one whose node has just come back, until the gateway has rebuilt its routes (a debounce after the
      // registry changed): it declares REST actions, but no route of the gateway names it yet.
      if (service && (SERVICE_NAMES as readonly string[]).includes(service) && !this.serviceRouted(service)) {
        return this.sendError(req, res, new ServiceUnavailableError({ service }));
      }
      const wantsPage = (req.method === "GET" || req.method === "HEAD") && /text\/html/.test(req.headers.accept ?? "");
      if (!wantsPage || NOT_UI.test(path)) return gateway.send404.call(this, req, res);
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
    },

    /** Whether the gateway can route to `service`: running, and routed unless it declares no REST action at all. */
    serviceRouted(service: string): boolean {
      const entry = this.broker.registry
        .getServiceList({ onlyAvailable: true, skipInternal: true, withActions: true })
        .find((candidate) => candidate.name === service);
      if (!entry) return false;
      const { actions } = entry as unknown as { actions?: Record<string, { rest?: unknown }> };
      const declaresRoutes = Object.values(actions ?? {}).some((action) => action.rest);
      const aliases = (this as unknown as { aliases: { action?: string }[] }).aliases;
      return !declaresRoutes || aliases.some((alias) => alias.action?.startsWith(`${service}.`));
    },

    /** Called as the node starts stopping: no new connections or requests; accepted ones finish (see the middleware). */
    stopIntake() {
      for (const end of this.tails) end();
      if (!this.server?.listening) return;
      this.server.close();
      this.server.closeIdleConnections();
    },

    async readinessChecks(): Promise<ReadinessCheck[]> {
      const ok = this.routesGenerated;
      return [{ name: "gateway:routes", ok, latencyMs: 0, ...(ok ? {} : { error: "routes not generated yet" }) }];
    },

    /**
     * Every error answer passes here (the token endpoint's too): a 5xx is logged with its cause under the request id
     * the client gets, since the answer says little (`reformatError`); and the headers some errors owe the client are
     * set before moleculer-web writes the status line.
     */
    sendError(req: GatewayRequest, res: ServerResponse, error: Error) {
      const err = errorForClient(error, req);
      const { code, data, type } = err as Errors.MoleculerError;
      if (req.$alias?.action === "auth.login" && type === "INVALID_CREDENTIALS") {
        this.countLoginFailure(req).catch((failure: Error) =>
          this.logger.warn(`Could not count a failed sign-in: ${failure.message}`),
        );
      }
      // The cause of a fault as it happened, before errorForClient shaped what the client is told. A not-ready node's
      // 503 is the probe's normal answer (its body names the checks), not a fault: logged, every probe of a starting
      // node would count toward the error-rate alert.
      if (!(Number.isInteger(code) && code >= 400 && code < 500) && type !== "NOT_READY") {
        const { name, message, stack, type: causeType } = error as Errors.MoleculerError;
        this.logger.error(
          { requestId: req.$requestId, error: { name, message, type: causeType, stack } },
          `${req.method} ${req.url} failed: ${name}: ${message}`,
        );
      }
      if (!res.headersSent && code === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="aicunet"');
      // A 429, and a 503 that knows when to come back (OVERLOADED), say when in `data.retryAfter` (seconds).
      const retryAfter = (data as { retryAfter?: unknown } | undefined)?.retryAfter;
      if (!res.headersSent && (code === 429 || code === 503) && typeof retryAfter === "number")
        res.setHeader("Retry-After", String(retryAfter));
      return gateway.sendError.call(this, req, res, err);
    },

    /**
     * moleculer-web's own handler logs a 5xx as one line whose cause the structured logger drops; `sendError` logs it
     * instead.
     */
    errorHandler(req: GatewayRequest, res: ServerResponse, err: Error) {
      this.sendError(req, res, err);
    },

    /**
     * One error shape, `{ name, message, code, type, data }`. A fault of ours (5xx without a known type) tells the
     * client only that it happened and the request id to quote; the details go to the log (`sendError`).
     */
    reformatError(err: Errors.MoleculerError, req: GatewayRequest): ErrorBody {
      const code = Number.isInteger(err.code) && err.code >= 400 && err.code < 600 ? err.code : 500;
      if (code >= 500 && !err.type && cfg.isProduction) {
        return {
          name: "InternalServerError",
          message: "Internal server error",
          code,
          type: "INTERNAL_ERROR",
          data: { requestId: req.$requestId },
        };
      }
      const data = err.type === "VALIDATION_ERROR" ? nameUnknownFields(err.data) : err.data;
      return { name: err.name, message: err.message, code, type: err.type ?? "INTERNAL_ERROR", data };
    },
  },
};

export default ApiService;
