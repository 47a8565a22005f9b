/**
 * The gateway's live views as server-sent events (lib/event-stream.ts): the log tail (`GET /api/logs/stream`) and an
 * order's progress (`GET /api/orders/:id/stream`). A stream ends when the access token it was opened with expires or
 * is revoked (mixins/gateway-auth.mixin.ts), and when the node stops taking requests (`endStreams`).
 */
import type { ConfiguredSettings } from "../lib/config";
import type { ServerResponse } from "node:http";
import type { Service, ServiceSchema } from "moleculer";
import { openEventStream, type EventStream } from "../lib/event-stream";
import type { GatewayRequest } from "../lib/gateway-request";
import type { LogPage, LogTailPage } from "../contracts/logs";
import { isFinal, type OrderWithSaga } from "../contracts/orders";
import type { GatewayAuthMethods } from "./gateway-auth.mixin";
import { isSagaAtRest } from "../contracts/sagas";

/** The live log tail asks the log store for new records this often; an order's stream asks for the order this often. */
const TAIL_POLL_MS = 1000;
const ORDER_POLL_MS = 1000;
const TAIL_PAGE = 200;
const TAIL_FILTERS = ["level", "service", "node", "requestId", "search"] as const;

export type GatewayStreamMethods = {
  tailLogs(req: GatewayRequest, res: ServerResponse): Promise<void>;
  streamOrder(req: GatewayRequest, res: ServerResponse): Promise<void>;
  openStream(
    req: GatewayRequest,
    res: ServerResponse,
    pollMs: number,
    poll: (stream: EventStream) => Promise<void>,
  ): void;
  /** Ends every open stream: called as the node stops taking requests. */
  endStreams(): void;
};

interface StreamState {
  /** How to end each open stream. */
  openStreams: Set<() => void>;
}

/** The methods it brings, and the revocation check of the token a stream was opened with. */
type StreamMethods = GatewayStreamMethods & Pick<GatewayAuthMethods, "tokenRevoked">;
type StreamThis = Service<ConfiguredSettings> & StreamState & StreamMethods;

const methods: GatewayStreamMethods = {
  /**
   * `GET /api/logs/stream`: the log store's new records as server-sent events (`event: log`, `id:` the record id),
   * with the filters of `GET /api/logs`. The first query runs before the stream starts, so a caller without
   * `logs:read` or a bad filter gets its 401/403/422. A client that reconnects with `Last-Event-ID` continues after
   * that record; a stream ends when the access token expires or is revoked, so a revoked caller does not keep reading.
   */
  async tailLogs(this: StreamThis, req: GatewayRequest, res: ServerResponse): Promise<void> {
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
  async streamOrder(this: StreamThis, req: GatewayRequest, res: ServerResponse): Promise<void> {
    const ctx = req.$ctx!;
    const id = /^\/orders\/([^/?]+)\/stream/.exec(req.url ?? "")?.[1] ?? "";
    const read = () => ctx.call<OrderWithSaga, { id: string }>("orders.get", { id });
    let last = await read();
    let sent = "";
    const finished = (order: OrderWithSaga) =>
      isFinal(order.status) && (!order.saga || isSagaAtRest(order.saga.status));
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
  openStream(
    this: StreamThis,
    req: GatewayRequest,
    res: ServerResponse,
    pollMs: number,
    poll: (stream: EventStream) => Promise<void>,
  ) {
    const token = req.$token;
    const stream = openEventStream(req, res, {
      pollMs,
      maxMs: token ? token.expiresAt - Date.now() : this.settings.config.auth.accessTokenTtl * 1000,
      poll: async (events) => {
        if (token && this.tokenRevoked(token)) return events.end();
        return poll(events);
      },
      onEnd: () => this.openStreams.delete(stream.end),
    });
    this.openStreams.add(stream.end);
  },

  endStreams(this: StreamThis) {
    for (const end of this.openStreams) end();
  },
};

export function gatewayStreamsMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<ConfiguredSettings, StreamMethods, StreamState>> = {
    created() {
      this.openStreams = new Set();
    },
    methods,
  };
  return schema as Partial<ServiceSchema>;
}
