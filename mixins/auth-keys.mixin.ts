/**
 * The auth service's signing keys: access tokens (ES256 JWTs) are signed with the newest key that is not retired, its
 * private key stored encrypted under AUTH_KEY_SECRET; the JWKS publishes the public keys, retired ones included while
 * their tokens may still be valid; a rotation starts a new key (lib/signing-keys.ts).
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import type { KeyRow } from "../lib/auth-rows";
import { openSigningKey } from "../lib/auth-secrets";
import {
  ALGORITHM,
  encryptPrivateKey,
  generateSigningKey,
  signAccessToken,
  type AccessClaims,
  type PublicJwk,
} from "../lib/signing-keys";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

/** How long the JWKS answer is reused; a rotation on any replica clears it at once (`auth.keys.rotated`). */
const JWKS_CACHE_MS = 60_000;

export interface AuthKeyMethods {
  signToken(claims: AccessClaims, transaction?: Transaction): Promise<string>;
  createSigningKey(options: { retireCurrent: boolean }): Promise<string>;
  ensureSigningKey(): Promise<void>;
}

export interface AuthKeyState {
  /** AUTH_KEY_SECRET, or development's generated one: set when the service starts. */
  keySecret: string;
  /** The last JWKS answer, so `/.well-known/jwks.json` is not a database query per request. */
  jwksCache?: { keys: PublicJwk[]; at: number };
}

type KeysThis = Service<DbSettings> & DbServiceThis & DbMethods & AuthKeyState & AuthKeyMethods;

export function authKeysMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DbMethods & AuthKeyMethods, DbServiceThis & AuthKeyState>> = {
    events: {
      /** A replica rotated the signing key: the cached JWKS answer lacks the new key. */
      "auth.keys.rotated"(this: KeysThis) {
        this.jwksCache = undefined;
      },
    },

    actions: {
      /** The public keys that verify access tokens (JWKS), including retired keys whose tokens may still be valid. */
      jwks: {
        permissions: "public",
        async handler(this: KeysThis): Promise<{ keys: PublicJwk[] }> {
          if (this.jwksCache && Date.now() - this.jwksCache.at < JWKS_CACHE_MS) return { keys: this.jwksCache.keys };
          const rows = await this.rows<KeyRow>(
            `SELECT public_jwk FROM signing_keys
             WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
             ORDER BY created_at DESC`,
            [this.settings.config.auth.accessTokenTtl + 60],
          );
          this.jwksCache = { keys: rows.map((row) => row.public_jwk), at: Date.now() };
          return { keys: this.jwksCache.keys };
        },
      },

      /**
       * Starts signing with a new key; the old one keeps verifying until its tokens have expired. Emits
       * `auth.keys.rotated` so gateways reload the JWKS at once. `users:admin`.
       */
      "keys.rotate": {
        audit: { entity: "signingKey" },
        rest: "POST /keys/rotate",
        permissions: ["users:admin"],
        async handler(this: KeysThis, ctx: Context): Promise<{ kid: string }> {
          const kid = await this.createSigningKey({ retireCurrent: true });
          ctx.broadcast("auth.keys.rotated", { kid });
          return { kid };
        },
      },
    },

    methods: {
      /** An access token signed with the newest key that is not retired (read each time: another replica may rotate). */
      async signToken(this: KeysThis, claims: AccessClaims, transaction?: Transaction): Promise<string> {
        const [row] = await this.rows<KeyRow>(
          "SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
          [],
          { transaction },
        );
        if (!row) throw new Error("No active signing key");
        let key;
        try {
          key = openSigningKey(row, this.keySecret);
        } catch (err) {
          this.logger.error(
            `${(err as Error).message}: this node cannot sign tokens until AUTH_KEY_SECRET is corrected`,
          );
          throw err;
        }
        return signAccessToken(claims, key, {
          issuer: this.settings.config.auth.issuer,
          audience: this.settings.config.auth.audience,
          ttlSeconds: this.settings.config.auth.accessTokenTtl,
        });
      },

      /** Stores a new key pair, its private key encrypted; optionally retires the current key in the same statement. */
      async createSigningKey(this: KeysThis, { retireCurrent }: { retireCurrent: boolean }): Promise<string> {
        const key = generateSigningKey();
        this.jwksCache = undefined;
        const retire = retireCurrent
          ? "WITH retired AS (UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL) "
          : "";
        await this.rows(
          `${retire}INSERT INTO signing_keys (kid, algorithm, private_key, public_jwk) VALUES ($1, $2, $3, $4)`,
          [key.kid, ALGORITHM, encryptPrivateKey(key.privateKeyPem, this.keySecret), JSON.stringify(key.publicJwk)],
        );
        return key.kid;
      },

      async ensureSigningKey(this: KeysThis) {
        const [active] = await this.rows<KeyRow>("SELECT kid FROM signing_keys WHERE retired_at IS NULL LIMIT 1");
        if (active) return;
        this.logger.info(`Created signing key ${await this.createSigningKey({ retireCurrent: false })}`);
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
