/**
 * The gateway's authentication: moleculer-web's `authenticate` for the `/api` routes identifies the caller by the
 * access token (verified against the auth service's JWKS), and `authenticateTokenRequest` prepares the token
 * endpoint's calls; both apply the request's rate limits (mixins/gateway-rate-limits.mixin.ts). The keys, the role
 * table and the token revocations are cached here, and cleared or updated by the auth service's events.
 */
import type { ConfiguredSettings } from "../lib/config";
import type { KeyObject } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Context, Service, ServiceSchema } from "moleculer";
import { parseBasicCredentials } from "../lib/basic-credentials";
import { UnauthorizedError } from "../lib/errors";
import type { AccessTokenInfo, GatewayRequest } from "../lib/gateway-request";
import { asSystem, permissionsOfRoles } from "../lib/permissions";
import type { Caller, CallerMeta } from "../contracts/caller";
import { RevocationList, subjectOf, type Revocation } from "../lib/revocation";
import {
  publicKeyObject,
  tokenKeyId,
  verifyAccessToken,
  type PublicJwk,
  type VerifiedClaims,
} from "../lib/signing-keys";
import { VerifiedTokenCache } from "../lib/token-cache";
import type { OAuthMeta } from "../contracts/auth";
import type { GatewayRateLimitMethods } from "./gateway-rate-limits.mixin";

const ANONYMOUS: Caller = Object.freeze({ type: "anonymous" });
/**
 * Endpoints that take credentials get the stricter per-IP limit. Not the refresh: a refresh token cannot be guessed
 * (256 random bits), and the console refreshes on every reload and in every tab; under this limit, a few reloads
 * ended sessions. It has the per-IP limit of every request.
 */
const CREDENTIAL_ACTIONS = new Set(["auth.login", "auth.register", "auth.changePassword", "auth.oauthToken"]);
const JWKS_TTL_MS = 5 * 60_000;
const JWKS_MIN_REFRESH_MS = 5_000;
const ROLES_TTL_MS = 30_000;
/**
 * Revocations arrive as `auth.tokens.revoked` events; the gateway also reloads the list this often, in case it missed
 * one (it was reconnecting), and before its first verified token.
 */
const REVOCATIONS_RESYNC_MS = 10_000;

export type GatewayAuthMethods = {
  authenticate(ctx: Context<unknown, CallerMeta>, route: unknown, req: GatewayRequest): Promise<Caller | null>;
  authenticateTokenRequest(
    ctx: Context<unknown, OAuthMeta & CallerMeta>,
    req: GatewayRequest,
    res: ServerResponse,
  ): Promise<void>;
  /** Whether the token was revoked since it was verified: a stream opened with it ends. */
  tokenRevoked(token: AccessTokenInfo): boolean;
  callerFromToken(token: string, ctx: Context): Promise<{ caller: Caller; token: AccessTokenInfo }>;
  verifyToken(token: string, ctx: Context): Promise<VerifiedClaims>;
  publicKey(kid: string, ctx: Context): Promise<KeyObject | undefined>;
  rolePermissions(ctx: Context): Promise<Record<string, string[]>>;
  syncRevocations(ctx: Context): Promise<void>;
};

interface AuthState {
  /** The auth service's verification keys, as key objects by `kid`. */
  jwks: { keys: Map<string, KeyObject>; fetchedAt: number; pending?: Promise<void> };
  verifiedTokens: VerifiedTokenCache;
  roles: { table?: Record<string, string[]>; fetchedAt: number };
  revocations: { list: RevocationList; syncedAt: number; attemptedAt: number; pending?: Promise<void> };
}

/** The methods it brings, and the rate limits it applies (mixins/gateway-rate-limits.mixin.ts). */
type AuthMethods = GatewayAuthMethods & GatewayRateLimitMethods;
type AuthThis = Service<ConfiguredSettings> & AuthState & AuthMethods;

const methods: GatewayAuthMethods = {
  /**
   * Identifies the caller of an `/api` request: anonymous without a token, 401 for a token that does not verify.
   * Applies the per-IP, per-caller and credential-endpoint rate limits.
   */
  async authenticate(this: AuthThis, ctx: Context<unknown, CallerMeta>, _route: unknown, req: GatewayRequest) {
    const ip = this.clientOf(req);
    const action = req.$alias?.action;
    await this.limit("ip", `ip:${ip}`, this.settings.config.rateLimits.perIp);
    if (action === "auth.login") await this.refuseLockedOutLogin(req);
    else if (action && CREDENTIAL_ACTIONS.has(action))
      await this.limit("auth", `${action}:ip:${ip}`, this.settings.config.rateLimits.auth);
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
    if ("id" in caller) await this.limit("user", `caller:${caller.id}`, this.settings.config.rateLimits.perUser);
    return caller;
  },

  /**
   * Prepares a call of the token endpoint (`POST /oauth/token`, RFC 6749): its caller is anonymous, and the client
   * proves itself to auth in the form body or with HTTP Basic. The credential endpoints' per-IP limit applies, and no
   * cache may keep the answer (§5.1).
   */
  async authenticateTokenRequest(
    this: AuthThis,
    ctx: Context<unknown, OAuthMeta & CallerMeta>,
    req: GatewayRequest,
    res: ServerResponse,
  ) {
    ctx.meta.caller = ANONYMOUS;
    await this.limit("auth", `auth.oauthToken:ip:${this.clientOf(req)}`, this.settings.config.rateLimits.auth);
    res.setHeader("Cache-Control", "no-store");
    const header = req.headers.authorization;
    if (header?.startsWith("Basic ")) ctx.meta.basicAuth = parseBasicCredentials(header.slice(6));
  },

  tokenRevoked(this: AuthThis, token: AccessTokenInfo): boolean {
    return this.revocations.list.refuses(token.subject, token.generation);
  },

  /**
   * The caller a token stands for, and the token's subject, generation and expiry. 401 for a token that does not
   * verify, has no expiry, or was revoked (its subject was disabled or changed after it was issued:
   * lib/revocation.ts).
   */
  async callerFromToken(
    this: AuthThis,
    token: string,
    ctx: Context,
  ): Promise<{ caller: Caller; token: AccessTokenInfo }> {
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
    if (this.tokenRevoked(info)) {
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
   * Reloads the revocation list from the auth service when it is older than `REVOCATIONS_RESYNC_MS`: waited for
   * when the gateway has never loaded it (a fresh gateway knows nothing of earlier revocations), in the background
   * after that (events keep it current; a failed reload keeps the list it has and says so).
   */
  async syncRevocations(this: AuthThis, ctx: Context): Promise<void> {
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
   * Checks a token's signature (ES256, by the key its `kid` names), issuer, audience and expiry, and keeps the
   * result in the verified-token cache. 401 for a token that does not verify.
   */
  async verifyToken(this: AuthThis, token: string, ctx: Context): Promise<VerifiedClaims> {
    const kid = tokenKeyId(token);
    const key = kid ? await this.publicKey(kid, ctx) : undefined;
    if (!kid || !key) throw new UnauthorizedError("The token is not signed by a known key", "INVALID_TOKEN");
    try {
      const claims = verifyAccessToken(token, key, {
        issuer: this.settings.config.auth.issuer,
        audience: this.settings.config.auth.audience,
      });
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
  async publicKey(this: AuthThis, kid: string, ctx: Context): Promise<KeyObject | undefined> {
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

  /** The auth service's role table (role to permissions), cached; cleared when roles change. */
  async rolePermissions(this: AuthThis, ctx: Context): Promise<Record<string, string[]>> {
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
};

export function gatewayAuthMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<ConfiguredSettings, AuthMethods, AuthState>> = {
    events: {
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
      this.jwks = { keys: new Map(), fetchedAt: 0 };
      this.verifiedTokens = new VerifiedTokenCache(this.settings.config.auth.tokenCacheSize);
      this.roles = { fetchedAt: 0 };
      this.revocations = {
        list: new RevocationList(this.settings.config.auth.accessTokenTtl * 1000),
        syncedAt: 0,
        attemptedAt: 0,
      };
    },

    methods,
  };
  return schema as Partial<ServiceSchema>;
}
