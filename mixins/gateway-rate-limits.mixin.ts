/**
 * The gateway's rate limits, per client address and per caller, counted in a store the gateway replicas share (Redis,
 * when REDIS_URL is set, with this gateway's memory standing in while it is out) or in this gateway's memory
 * (lib/rate-limit.ts). Sign-ins are limited by their failures.
 */
import type { ConfiguredSettings } from "../lib/config";
import type { BlockList } from "node:net";
import type { Context, Service, ServiceSchema } from "moleculer";
import { normalizeEmail } from "../lib/account-input";
import { clientAddress, parseTrustedProxies } from "../lib/client-address";
import { RateLimitedError } from "../lib/errors";
import type { GatewayRequest } from "../lib/gateway-request";
import {
  FallbackRateLimitStore,
  MemoryRateLimitStore,
  RedisRateLimitStore,
  retryAfterSeconds,
} from "../lib/rate-limit";

const MINUTE = 60_000;
/** How long an account's failed sign-ins count against it. */
const ACCOUNT_WINDOW_MS = 15 * MINUTE;

export type GatewayRateLimitMethods = {
  clientOf(req: GatewayRequest): string;
  limit(name: string, key: string, perMinute: number): Promise<void>;
  refuseLockedOutLogin(req: GatewayRequest): Promise<void>;
  countLoginFailure(req: GatewayRequest): Promise<void>;
};

interface RateLimitState {
  rateLimits: FallbackRateLimitStore;
  trustedProxies: BlockList;
}

type RateLimitThis = Service<ConfiguredSettings> & RateLimitState & GatewayRateLimitMethods;

/** The account a sign-in is for, in the form auth compares e-mail addresses in. */
function loginAccountOf(req: GatewayRequest): string {
  const email = (req.$params as { email?: unknown } | undefined)?.email;
  return typeof email === "string" ? normalizeEmail(email) : "";
}

const methods: GatewayRateLimitMethods = {
  /** The client's address: the socket's, or what trusted proxies put in `X-Forwarded-For` (lib/client-address.ts). */
  clientOf(this: RateLimitThis, req: GatewayRequest): string {
    req.$client ??= clientAddress(req.socket.remoteAddress, req.headers["x-forwarded-for"], this.trustedProxies);
    return req.$client;
  },

  /** Counts a request against a limit; 429 with `Retry-After` when over it. */
  async limit(this: RateLimitThis, name: string, key: string, perMinute: number): Promise<void> {
    const window = await this.rateLimits.hit(`${name}:${key}`, MINUTE);
    if (window.count > perMinute) throw new RateLimitedError(name, retryAfterSeconds(window));
  },

  /**
   * Sign-ins are limited by their failures, not their number: per account from any address (a slow guess spread
   * over many addresses), and per address (one address guessing many accounts). A right password from an address
   * others share is not refused for their mistakes until that address's failures pass the limit.
   */
  async refuseLockedOutLogin(this: RateLimitThis, req: GatewayRequest): Promise<void> {
    const checks: [string, string, number][] = [
      ["auth", `login-failures:ip:${this.clientOf(req)}`, this.settings.config.rateLimits.auth],
      ["account", `login-failures:account:${loginAccountOf(req)}`, this.settings.config.rateLimits.loginAccount],
    ];
    for (const [name, key, limit] of checks) {
      const window = await this.rateLimits.peek(key);
      if (window.count >= limit) throw new RateLimitedError(name, retryAfterSeconds(window));
    }
  },

  /** Counts a failed sign-in against its address and its account. */
  async countLoginFailure(this: RateLimitThis, req: GatewayRequest): Promise<void> {
    await Promise.all([
      this.rateLimits.hit(`login-failures:ip:${this.clientOf(req)}`, MINUTE),
      this.rateLimits.hit(`login-failures:account:${loginAccountOf(req)}`, ACCOUNT_WINDOW_MS),
    ]);
  },
};

/**
 * The `onBeforeCall` of the health and JWKS routes. Health probes and the JWKS are public and cost the node work (every
 * database pinged, the key set assembled): each client address gets RATE_LIMIT_PROBE of them a minute, counted in this
 * gateway's memory so a probe costs no round trip.
 */
export async function limitProbe(this: RateLimitThis, _ctx: Context, _route: unknown, req: GatewayRequest) {
  const window = await this.rateLimits.local.hit(`probe:ip:${this.clientOf(req)}`, MINUTE);
  if (window.count > this.settings.config.rateLimits.probe)
    throw new RateLimitedError("probe", retryAfterSeconds(window));
}

export function gatewayRateLimitsMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<ConfiguredSettings, GatewayRateLimitMethods, RateLimitState>> = {
    created() {
      const shared = this.settings.config.redisUrl
        ? new RedisRateLimitStore(this.settings.config.redisUrl, `${this.settings.config.namespace}:ratelimit:`)
        : new MemoryRateLimitStore();
      this.rateLimits = new FallbackRateLimitStore(shared, new MemoryRateLimitStore(), (message) =>
        this.logger.warn(message),
      );
      this.trustedProxies = parseTrustedProxies(this.settings.config.trustedProxies);
    },

    async stopped() {
      await this.rateLimits.close();
    },

    methods,
  };
  return schema as Partial<ServiceSchema>;
}
