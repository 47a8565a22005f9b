/**
 * api: the gateway (moleculer-web). It maps REST routes from the `rest:` of every action in the cluster, stamps each
 * request with its id and security headers, shapes every error answer, and serves health, the OAuth2 token endpoint,
 * the JWKS and the UI. Its mixins write the access log (gateway-access-log), authenticate (gateway-auth), apply rate
 * limits (gateway-rate-limits), stream the live log tail and order progress (gateway-streams), stop taking requests
 * as the node stops (gateway-shutdown), serve the OpenAPI document (gateway-openapi) and say whether its routes are
 * built (gateway-route-readiness). Authorization is not here: the permissions middleware checks every call on the
 * node that runs it. Business rules live in the services.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import ApiGateway, { type ApiSettingsSchema } from "moleculer-web";
import type { CallingOptions, Context, Errors, Service, ServiceSchema } from "moleculer";
import { SERVICE_NAMES, type ConfiguredSettings } from "../lib/config";
import { giveRefreshTokenAsCookie, takeRefreshTokenFromCookie, TOKEN_ACTIONS } from "../lib/gateway-cookie-session";
import { corsOptions, securityHeaders } from "../lib/gateway-headers";
import type { GatewayRequest } from "../lib/gateway-request";
import { BODY_LIMIT, errorForClient } from "../lib/gateway-errors";
import { DOCS_ALIASES, sendUiIndex, wantsUiPage } from "../lib/gateway-ui";
import { UI_DIR } from "../lib/paths";
import { ServiceUnavailableError, UnsupportedMediaTypeError, nameUnknownFields } from "../lib/errors";
import { clientInputProblem } from "../lib/client-input";
import { sendOAuthError } from "../lib/oauth-errors";
import type { CallerMeta } from "../contracts/caller";
import type { GatewayMeta } from "../lib/gateway-meta";
import type { OAuthMeta } from "../contracts/auth";
import { dashboardMixin, type DashboardMethods } from "../mixins/dashboard.mixin";
import { gatewayAccessLogMixin, type GatewayAccessLogMethods } from "../mixins/gateway-access-log.mixin";
import { gatewayAuthMixin, type GatewayAuthMethods } from "../mixins/gateway-auth.mixin";
import { gatewayOpenApiMixin } from "../mixins/gateway-openapi.mixin";
import { gatewayRateLimitsMixin, limitProbe, type GatewayRateLimitMethods } from "../mixins/gateway-rate-limits.mixin";
import { gatewayRouteReadinessMixin, type GatewayRouteReadinessMethods } from "../mixins/gateway-route-readiness.mixin";
import { gatewayShutdownMixin, type GatewayShutdownMethods } from "../mixins/gateway-shutdown.mixin";
import { gatewayStreamsMixin, type GatewayStreamMethods } from "../mixins/gateway-streams.mixin";

interface ErrorBody {
  name: string;
  message: string;
  code: number;
  type: string;
  data?: unknown;
}

/** moleculer-web's own handlers, which ours wrap. */
const gateway = (
  ApiGateway as unknown as { methods: Record<"httpHandler" | "sendError" | "send404", (...args: unknown[]) => unknown> }
).methods;
/** Requests that last: no request timeout for them (their calls to the services have theirs). */
const STREAM_PATHS = [/^\/api\/logs\/stream$/, /^\/api\/orders\/[^/]+\/stream$/];

/** A client's `X-Request-Id` is logged (`clientRequestId`) only if it is short and plain: it cannot forge log lines. */
const SAFE_REQUEST_ID = /^[\w.:-]{1,128}$/;

interface ApiState {
  /** Set on every answer (lib/gateway-headers.ts). */
  securityHeaders: Record<string, string>;
  /** Whether `/api` answers cross-origin clients (`CORS_ORIGINS`). */
  corsEnabled: boolean;
}

interface ApiMethods {
  httpHandler(req: GatewayRequest, res: ServerResponse, next?: (err?: unknown) => void): unknown;
  sendError(req: GatewayRequest, res: ServerResponse, err: Error): void;
  errorHandler(req: GatewayRequest, res: ServerResponse, err: Error): void;
  send404(req: GatewayRequest, res: ServerResponse): void;
}

/** The methods of this schema and of the gateway's mixins, which its routes and methods call. */
type GatewayMethods = ApiMethods &
  DashboardMethods &
  GatewayAccessLogMethods &
  GatewayAuthMethods &
  GatewayRateLimitMethods &
  GatewayRouteReadinessMethods &
  GatewayShutdownMethods &
  GatewayStreamMethods;
type ApiSettings = ApiSettingsSchema & ConfiguredSettings;
type ApiThis = Service<ApiSettings> & ApiState & GatewayMethods;

/** Throws the gateway's answer to parameters no service could take (too deep, too many values, unstorable text). */
function refuseUnstorableInput(req: GatewayRequest) {
  const problem = clientInputProblem(req.$params);
  if (problem) throw problem;
}

const ApiService: ServiceSchema<ApiSettingsSchema, GatewayMethods, ApiState, ApiThis> = {
  name: "api",
  mixins: [
    ApiGateway as unknown as Partial<ServiceSchema>,
    dashboardMixin(),
    gatewayAccessLogMixin(),
    gatewayRateLimitsMixin(),
    gatewayAuthMixin(),
    gatewayRouteReadinessMixin(),
    gatewayStreamsMixin(),
    gatewayShutdownMixin(),
    gatewayOpenApiMixin(),
  ],

  /** The port and the CORS policy of the node's configuration, which the node put in the settings. */
  merged(schema) {
    const settings = schema.settings as ApiSettings;
    settings.port = settings.config.port;
    const cors = corsOptions(settings.config);
    if (cors) settings.routes = settings.routes?.map((route) => (route.path === "/api" ? { ...route, cors } : route));
  },

  created(this: ApiThis) {
    this.securityHeaders = securityHeaders(this.settings.config);
    this.corsEnabled = corsOptions(this.settings.config) !== undefined;
  },

  settings: {
    ip: "0.0.0.0",
    // The access log (gateway-access-log) replaces moleculer-web's own per-request lines, and the route table (printed
    // again on every change of the service registry) is for debugging.
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
        onBeforeCall(
          this: ApiThis,
          ctx: Context<unknown, OAuthMeta & CallerMeta>,
          _route: unknown,
          req: GatewayRequest,
          res: ServerResponse,
        ) {
          refuseUnstorableInput(req);
          return this.authenticateTokenRequest(ctx, req, res);
        },
        onError: sendOAuthError,
      },
      {
        path: "/docs",
        mappingPolicy: "restrict",
        bodyParsers: false,
        aliases: DOCS_ALIASES,
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
          this: ApiThis,
          ctx: Context<unknown, GatewayMeta>,
          _route: unknown,
          req: GatewayRequest,
          res: ServerResponse,
          data: unknown,
        ) {
          ctx.meta.$statusCode ??= req.$action?.status;
          return giveRefreshTokenAsCookie(req, res, data, this.settings.config.auth.refreshTokenTtl);
        },
        autoAliases: true,
        mappingPolicy: "restrict",
        authentication: true,
        bodyParsers: { json: { limit: BODY_LIMIT, strict: true }, urlencoded: false },
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
  },

  methods: {
    /**
     * Every HTTP request passes here first (moleculer-web's handler follows): a new request id that moleculer-web
     * turns into `ctx.requestID` and the response echoes in `X-Request-Id`, security headers, the access log line,
     * and 415 for a body on `/api` that is not JSON.
     */
    httpHandler(req: GatewayRequest, res: ServerResponse, next?: (err?: unknown) => void) {
      // The request's id (the trace and correlation id of all its work) is always ours: a client that chose it could
      // join its requests to another caller's trail. The client's own value is logged beside it.
      const incoming = req.headers["x-request-id"];
      if (typeof incoming === "string" && SAFE_REQUEST_ID.test(incoming)) req.$clientRequestId = incoming;
      const requestId = randomUUID();
      req.headers["x-request-id"] = requestId;
      delete req.headers["x-correlation-id"];
      req.$requestId = requestId;
      res.setHeader("X-Request-Id", requestId);
      for (const [name, value] of Object.entries(this.securityHeaders)) res.setHeader(name, value);
      this.logAccessWhenAnswered(req, res);
      // OPTIONS never runs an action (moleculer-web would call the one its Access-Control-Request-Method names where
      // a route has no CORS): only a preflight on `/api` with CORS on is moleculer-web's to answer.
      const preflight = req.headers["access-control-request-method"] !== undefined && this.corsEnabled;
      if (req.method === "OPTIONS" && !(preflight && req.url?.startsWith("/api/"))) {
        res.writeHead(204, { Allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" }).end();
        return;
      }
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

    /** A miss: 503 for a platform service not routed now, the UI's index.html for a page (gateway-ui), else 404. */
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
      if (!wantsUiPage(req, path)) return gateway.send404.call(this, req, res);
      sendUiIndex(req, res);
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

    /** moleculer-web's handler logs a 5xx as a line whose cause the structured logger drops: `sendError` logs it. */
    errorHandler(req: GatewayRequest, res: ServerResponse, err: Error) {
      this.sendError(req, res, err);
    },

    /**
     * One error shape, `{ name, message, code, type, data }`. A fault of ours (5xx without a known type) tells the
     * client only that it happened and the request id to quote; the details go to the log (`sendError`).
     */
    reformatError(err: Errors.MoleculerError, req: GatewayRequest): ErrorBody {
      const code = Number.isInteger(err.code) && err.code >= 400 && err.code < 600 ? err.code : 500;
      if (code >= 500 && !err.type && this.settings.config.isProduction) {
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
