/** Custom schema keys of this project, typed so no `any` is needed to use them. */
import "moleculer";
import type { JetStreamClient } from "nats";
import type { ListShape } from "../lib/paging";
import type { PermissionDeclaration } from "../lib/permissions";

declare module "moleculer" {
  /** The built-in middleware factories by name (untyped in the package). */
  const Middlewares: Record<string, (broker: ServiceBroker) => Middleware>;

  interface ServiceSchema {
    /** moleculer-db: the store adapter (set by `mixins/db.mixin.ts`). */
    adapter?: unknown;
    /** moleculer-db: the Sequelize model definition. */
    model?: unknown;
    /** @moleculer/channels: durable channel handlers by channel name (see mixins/consumer.mixin.ts). */
    channels?: Record<string, unknown>;
    /** Moleculer's hook (untyped in the package): gets the schema with its mixins merged, before the service is made. */
    merged?(schema: this): void;
  }

  interface ServiceBroker {
    /** Added by the channels middleware (@moleculer/channels): publishes to a durable channel. */
    sendToChannel(channel: string, payload: unknown, opts?: { headers?: Record<string, string> }): Promise<void>;
    /** The channels middleware's adapter (NATS JetStream in a cluster, in-memory otherwise). */
    channelAdapter: {
      parseMessageHeaders(raw: unknown): Record<string, string> | null;
      addPrefixTopic(name: string): string;
      /** NATS only: creates the stream of a channel (a no-op when it exists). */
      createStream?(name: string, subjects: string[], options: object): Promise<unknown>;
      /** NATS only, once connected: the JetStream client (the audit service keeps its checkpoint with it). */
      client?: JetStreamClient | null;
    };
  }

  interface ActionSchema {
    /**
     * Who may call the action, enforced by the permissions middleware on the node that runs it: `"public"`,
     * `"authenticated"`, or a list of permissions of which the caller needs one. Without it only the system may call.
     */
    permissions?: PermissionDeclaration;
    /**
     * Recorded in the audit trail after each successful call (middlewares/audit.middleware.ts): the entity type it
     * changes, and the parameter naming the entity when the result has no `id`.
     */
    audit?: { entity: string; idParam?: string };
    /** Whether exec rules may call the action (as the system, with an idempotency key in `meta.idempotencyKey`). */
    triggerable?: boolean;
    /**
     * HTTP status of a successful answer through the gateway (default 200): set by the gateway unless the handler set
     * `ctx.meta.$statusCode` itself (a replayed request's 200), and given by the OpenAPI document.
     */
    status?: number;
    /**
     * The list shape the action answers with (lib/paging.ts): `"page"` (offset paging) or `"cursor"` (an append-only
     * stream). The OpenAPI document gives it as the response schema, and a test checks every such route answers it.
     */
    list?: ListShape;
    /** `false`: no `moleculer.request.*` metrics for this action (middlewares/action-metrics.middleware.ts). */
    metrics?: boolean;
  }

  interface EventSchema {
    /** Moleculer's tracing of this handler; `false` for a handler that must not make spans (the span store's). */
    tracing?: boolean;
  }
}
