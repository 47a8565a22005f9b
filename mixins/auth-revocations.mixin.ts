/**
 * The revocation of access tokens before they expire (lib/revocation.ts): a change that must end a user's or client's
 * tokens raises its token generation, and `broadcastRevocation` tells every gateway (`auth.tokens.revoked`);
 * `auth.revocations` lists the revocations still in force, for gateways that start or missed an event.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import { subjectOf, type Revocation } from "../lib/revocation";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

export interface AuthRevocationMethods {
  broadcastRevocation(ctx: Context, revocation: Revocation | undefined): void;
}

type RevocationsThis = Service<DbSettings> & DbMethods & AuthRevocationMethods;

export function authRevocationsMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DbMethods & AuthRevocationMethods, DbServiceThis>> = {
    actions: {
      /**
       * The users and clients whose access tokens below a generation are refused, for as long as such tokens can be
       * valid; gateways load it at start and now and then, besides the `auth.tokens.revoked` events. Internal (system).
       */
      revocations: {
        async handler(this: RevocationsThis): Promise<Revocation[]> {
          const rows = await this.rows<{ type: "user" | "client"; id: string; generation: number; revokedAt: Date }>(
            `SELECT 'user' AS type, id::text AS id, token_generation AS generation, tokens_revoked_at AS "revokedAt"
               FROM users WHERE tokens_revoked_at > now() - make_interval(secs => $1)
             UNION ALL
             SELECT 'client', client_id, token_generation, tokens_revoked_at
               FROM oauth_clients WHERE tokens_revoked_at > now() - make_interval(secs => $1)`,
            [this.settings.config.auth.accessTokenTtl + 60],
          );
          return rows.map((row) => ({
            subject: subjectOf(row.type, row.id),
            minGeneration: row.generation,
            revokedAt: row.revokedAt.toISOString(),
          }));
        },
      },
    },

    methods: {
      /** Tells every gateway (after the change has committed) to refuse the subject's older access tokens. */
      broadcastRevocation(this: RevocationsThis, ctx: Context, revocation: Revocation | undefined): void {
        if (revocation) ctx.broadcast("auth.tokens.revoked", revocation);
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
