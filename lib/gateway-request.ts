/**
 * The gateway's HTTP request as moleculer-web and the gateway's own mixins annotate it while it is handled.
 */
import type { IncomingMessage } from "node:http";
import type { ActionSchema, Context } from "moleculer";
import type { CallerMeta } from "../contracts/caller";

export type GatewayRequest = IncomingMessage & {
  $ctx?: Context<unknown, CallerMeta>;
  $alias?: { action?: string };
  /** The URL as the client sent it (moleculer-web strips the route's prefix from `url` once a route matches). */
  originalUrl?: string;
  /** The action being called (moleculer-web sets it before the call). */
  $action?: ActionSchema;
  /** The request's parameters: body, query and path merged (moleculer-web sets it before `onBeforeCall`). */
  $params?: Record<string, unknown>;
  $requestId?: string;
  /** The client's own `X-Request-Id`, kept for the access log; never the request's id. */
  $clientRequestId?: string;
  /** The client's address, worked out once per request (`clientOf`). */
  $client?: string;
  /** The verified access token's subject, generation and expiry (ms), for streams that outlive the request. */
  $token?: AccessTokenInfo;
};

export interface AccessTokenInfo {
  subject: string;
  generation: number;
  expiresAt: number;
}
