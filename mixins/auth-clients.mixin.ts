/**
 * The auth service's OAuth2 clients (machine callers): their administration, and the token endpoint that gives them
 * access tokens by the client credentials grant. A disabled client or a rotated secret ends the client's access
 * tokens (auth-revocations).
 */
import { randomBytes } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import { revocationOf, toClient, type ClientRow } from "../lib/auth-rows";
import { newSecret, sha256 } from "../lib/auth-secrets";
import { NotFoundError, OAuthError } from "../lib/errors";
import { selectPage } from "../lib/database";
import type { GatewayMeta } from "../lib/gateway-meta";
import { pageParams, type Page } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import type { OAuthClient, OAuthMeta } from "../contracts/auth";
import type { AuthKeyMethods } from "./auth-keys.mixin";
import type { AuthRevocationMethods } from "./auth-revocations.mixin";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

/** The methods of the mixins it signs (auth-keys) and revokes (auth-revocations) with. */
type ClientMethods = Pick<AuthKeyMethods, "signToken"> & AuthRevocationMethods;
type ClientsThis = Service<DbSettings> & DbMethods & ClientMethods;

const createClientParams = paramsSchema({
  name: { type: "string", trim: true, min: 1, max: 200 },
  scopes: { type: "array", items: { type: "string", pattern: /^[a-z]+(:[a-z*]+)*$/ }, unique: true },
  $$strict: true,
});
const listClientsParams = paramsSchema({ ...pageParams(100, 50), $$strict: true });
const clientIdParams = paramsSchema({ clientId: { type: "string", max: 64 }, $$strict: true });
const updateClientParams = paramsSchema({
  clientId: { type: "string", max: 64 },
  status: { type: "enum", values: ["active", "disabled"] },
  $$strict: true,
});
/** The form of RFC 6749's token request; what is missing or wrong is answered in its terms, not by validation. */
const oauthTokenParams = paramsSchema({
  grant_type: { type: "string", max: 100, optional: true },
  client_id: { type: "string", max: 100, optional: true },
  client_secret: { type: "string", max: 200, optional: true },
  scope: { type: "string", max: 1000, optional: true },
});

export function authClientsMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DbMethods & ClientMethods, DbServiceThis>> = {
    actions: {
      /** Registers a machine client; its secret is shown once, here. `users:admin`. */
      "clients.create": {
        audit: { entity: "client", idParam: "clientId" },
        rest: "POST /clients",
        status: 201,
        permissions: ["users:admin"],
        params: createClientParams,
        async handler(
          this: ClientsThis,
          ctx: Context<ParamsOf<typeof createClientParams>, GatewayMeta>,
        ): Promise<OAuthClient & { clientSecret: string }> {
          const clientSecret = newSecret();
          const [row] = await this.rows<ClientRow>(
            `INSERT INTO oauth_clients (client_id, name, secret_hash, scopes) VALUES ($1, $2, $3, $4) RETURNING *`,
            [`client_${randomBytes(12).toString("hex")}`, ctx.params.name, sha256(clientSecret), ctx.params.scopes],
          );
          return { ...toClient(row), clientSecret };
        },
      },

      /** Machine clients, without secrets, oldest first, a page at a time. `users:admin`. */
      "clients.list": {
        rest: "GET /clients",
        list: "page",
        permissions: ["users:admin"],
        params: listClientsParams,
        async handler(this: ClientsThis, ctx: Context<ParamsOf<typeof listClientsParams>>): Promise<Page<OAuthClient>> {
          const query = { table: "oauth_clients", where: "true", order: "created_at, client_id", bind: [] };
          return selectPage(this.rows, query, ctx.params.page, ctx.params.pageSize, toClient);
        },
      },

      /**
       * Replaces a client's secret (the old one stops working at once, and so do the access tokens it got:
       * `auth.tokens.revoked`); the new one is shown once. `users:admin`.
       */
      "clients.rotateSecret": {
        audit: { entity: "client", idParam: "clientId" },
        rest: "POST /clients/:clientId/rotate-secret",
        permissions: ["users:admin"],
        params: clientIdParams,
        async handler(
          this: ClientsThis,
          ctx: Context<ParamsOf<typeof clientIdParams>>,
        ): Promise<OAuthClient & { clientSecret: string }> {
          const clientSecret = newSecret();
          const [row] = await this.rows<ClientRow>(
            `UPDATE oauth_clients SET secret_hash = $2, updated_at = now(), token_generation = token_generation + 1,
               tokens_revoked_at = now()
             WHERE client_id = $1 RETURNING *`,
            [ctx.params.clientId, sha256(clientSecret)],
          );
          if (!row) throw new NotFoundError("Client", ctx.params.clientId);
          this.broadcastRevocation(ctx, revocationOf("client", row));
          return { ...toClient(row), clientSecret };
        },
      },

      /**
       * Enables or disables a client; a disabled client gets no new tokens, and the ones it has are refused by every
       * gateway within seconds (`auth.tokens.revoked`). `users:admin`.
       */
      "clients.update": {
        audit: { entity: "client", idParam: "clientId" },
        rest: "PATCH /clients/:clientId",
        permissions: ["users:admin"],
        params: updateClientParams,
        async handler(this: ClientsThis, ctx: Context<ParamsOf<typeof updateClientParams>>): Promise<OAuthClient> {
          const revokes = ctx.params.status === "disabled" ? 1 : 0;
          const [row] = await this.rows<ClientRow>(
            `UPDATE oauth_clients SET status = $2, updated_at = now(), token_generation = token_generation + $3::int,
               tokens_revoked_at = CASE WHEN $3::int > 0 THEN now() ELSE tokens_revoked_at END
             WHERE client_id = $1 RETURNING *`,
            [ctx.params.clientId, ctx.params.status, revokes],
          );
          if (!row) throw new NotFoundError("Client", ctx.params.clientId);
          if (revokes) this.broadcastRevocation(ctx, revocationOf("client", row));
          return toClient(row);
        },
      },

      /**
       * OAuth2 token endpoint, client credentials grant only (RFC 6749 §4.4). Credentials come from HTTP Basic (the
       * gateway passes them in `meta.basicAuth`) or the form. Errors carry RFC 6749 codes as their `type`. Public.
       */
      oauthToken: {
        permissions: "public",
        params: oauthTokenParams,
        async handler(this: ClientsThis, ctx: Context<ParamsOf<typeof oauthTokenParams>, OAuthMeta>) {
          const { grant_type: grantType, scope } = ctx.params;
          const basicAuth = ctx.meta.basicAuth;
          if (!grantType) throw new OAuthError("invalid_request", "grant_type is required");
          if (grantType !== "client_credentials") {
            throw new OAuthError("unsupported_grant_type", `grant_type ${grantType} is not supported`);
          }
          if (basicAuth && (ctx.params.client_id || ctx.params.client_secret)) {
            throw new OAuthError("invalid_request", "use one client authentication method, not two");
          }
          const clientId = basicAuth?.id ?? ctx.params.client_id;
          const secret = basicAuth?.secret ?? ctx.params.client_secret;
          if (!clientId || !secret) throw new OAuthError("invalid_client", "client authentication failed");
          const [client] = await this.rows<ClientRow>("SELECT * FROM oauth_clients WHERE client_id = $1", [clientId]);
          const secretHash = sha256(secret);
          if (!client || client.status !== "active" || client.secret_hash !== secretHash) {
            throw new OAuthError("invalid_client", "client authentication failed");
          }
          const requested = scope ? scope.split(" ").filter(Boolean) : client.scopes;
          const refused = requested.filter((item) => !client.scopes.includes(item));
          if (refused.length > 0)
            throw new OAuthError("invalid_scope", `scope not granted to this client: ${refused.join(" ")}`);
          const grantedScope = requested.join(" ");
          return {
            access_token: await this.signToken({
              sub: client.client_id,
              typ: "client",
              scope: grantedScope,
              gen: client.token_generation,
            }),
            token_type: "Bearer",
            expires_in: this.settings.config.auth.accessTokenTtl,
            scope: grantedScope,
          };
        },
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
