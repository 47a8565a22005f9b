/**
 * shipping (own database): shipments for paid orders, and their cancellation, against a simulated carrier. Country
 * code `ZZ` is an unsupported destination (a business failure: the saga refunds and compensates); an outage started
 * with `POST /api/shipping/outage` makes every new shipment fail transiently (503) until it ends. Idempotent per
 * `meta.idempotencyKey` like payments: a repeat returns the first shipment; a cancel before the shipment voids it.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import { ConflictError, DependencyUnavailableError, UnsupportedDestinationError, invalidFields } from "../lib/errors";
import type { GatewayMeta } from "../lib/gateway-meta";
import { COUNTRY_CODE } from "../lib/order-requests";
import { pageOf, pageParams, type Page } from "../lib/paging";
import { assertType, paramsSchema, type ParamsOf, type SameType } from "../lib/params";
import shippingMigrations from "../migrations/shipping";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import type { ShippingAddress } from "../contracts/orders";
import type { Shipment } from "../contracts/shipping";
import { storableJson } from "../lib/storable";
import { toShipment, type ShipmentRow } from "../lib/shipping-rows";

const UNSUPPORTED_COUNTRIES = new Set(["ZZ"]);

/** Per-action fault tolerance of a call to the (simulated) carrier. */
const CARRIER_CALL = {
  // A caller that sets no timeout of its own waits this long (the saga sets its step timeout on every call).
  timeout: 10_000,
  retryPolicy: { enabled: true, retries: 1, delay: 100, maxDelay: 500, factor: 2 },
  circuitBreaker: { enabled: true, threshold: 0.5, minRequestCount: 10, windowTime: 30, halfOpenTime: 5000 },
  bulkhead: { enabled: true, concurrency: 20, maxQueueSize: 200 },
};

interface ShippingMethods {
  byShipmentKey(key: string): Promise<ShipmentRow | undefined>;
}

type ShippingThis = Service<DbSettings> & DbServiceThis & DbMethods & ShippingMethods & { outageUntil: number };

const createParams = paramsSchema({
  orderId: { type: "uuid" },
  // What the saga sends: the order's address, every field a string, the country in the form the carrier takes. The
  // intake checked more when the order was placed (lengths, trimming, no other keys); repeating that here would fail
  // the sagas of orders placed under older rules, so the address is stored as it comes.
  address: {
    type: "object",
    props: {
      name: { type: "string" },
      street: { type: "string" },
      city: { type: "string" },
      postalCode: { type: "string" },
      country: { type: "string", pattern: COUNTRY_CODE },
    },
  },
  $$strict: true,
});
// The saga sends the order's `ShippingAddress` (a contract, written out): a field added to it fails the typecheck
// here until the rule above checks it too.
assertType<SameType<ParamsOf<typeof createParams>["address"], ShippingAddress>>();
const cancelParams = paramsSchema({ shipmentKey: { type: "string", min: 1, max: 300 }, $$strict: true });
const outageParams = paramsSchema({
  durationMs: { type: "number", integer: true, min: 0, max: 3_600_000 },
  $$strict: true,
});
const listParams = paramsSchema({ orderId: { type: "uuid" }, ...pageParams(100), $$strict: true });

const ShippingService: ServiceSchema<DbSettings, DbMethods & ShippingMethods, DbServiceThis & { outageUntil: number }> =
  {
    name: "shipping",
    mixins: [
      dbMixin({
        service: "shipping",
        migrations: shippingMigrations,
      }),
    ],

    created(this: ShippingThis) {
      this.outageUntil = 0;
    },

    actions: {
      /**
       * Creates the shipment of a paid order, once per `meta.idempotencyKey`. 422 `UNSUPPORTED_DESTINATION` for `ZZ`,
       * 503 (retryable) during an outage, 409 when a cancel voided the key first. System only (the order saga).
       */
      create: {
        audit: { entity: "shipment", idParam: "orderId" },
        ...CARRIER_CALL,
        params: createParams,
        async handler(this: ShippingThis, ctx: Context<ParamsOf<typeof createParams>, GatewayMeta>): Promise<Shipment> {
          const key = ctx.meta.idempotencyKey;
          if (!key) {
            throw invalidFields("A shipment needs an idempotency key", [
              { field: "idempotencyKey", message: "required in meta", type: "required" },
            ]);
          }
          // A repeat answers the shipment made, also while the carrier is down.
          let row = await this.byShipmentKey(key);
          if (!row) {
            const { orderId, address } = ctx.params;
            if (UNSUPPORTED_COUNTRIES.has(address.country)) throw new UnsupportedDestinationError(address.country);
            if (Date.now() < this.outageUntil) {
              throw new DependencyUnavailableError("carrier", "outage (simulated)");
            }
            [row] = await this.rows<ShipmentRow>(
              `INSERT INTO shipments (id, shipment_key, order_id, country, address, status)
             VALUES ($1, $2, $3, $4, $5, 'CREATED') ON CONFLICT (shipment_key) DO NOTHING RETURNING *`,
              [randomUUID(), key, orderId, address.country, storableJson(address)],
            );
            // Made by a concurrent duplicate, or voided by a cancel that came first.
            row ??= await this.byShipmentKey(key);
          }
          if (row!.status === "VOIDED") {
            throw new ConflictError("This shipment was cancelled before it was made", "CONFLICT", { shipmentKey: key });
          }
          return toShipment(row!);
        },
      },

      /** Cancels the shipment made under `shipmentKey`, once; with none yet, voids the key. System only. */
      cancel: {
        audit: { entity: "shipment", idParam: "shipmentKey" },
        ...CARRIER_CALL,
        params: cancelParams,
        async handler(this: ShippingThis, ctx: Context<ParamsOf<typeof cancelParams>>): Promise<Shipment> {
          const { shipmentKey } = ctx.params;
          await this.rows(
            `UPDATE shipments SET status = 'CANCELLED', cancelled_at = now() WHERE shipment_key = $1 AND status = 'CREATED'`,
            [shipmentKey],
          );
          await this.rows(
            `INSERT INTO shipments (id, shipment_key, status) VALUES ($1, $2, 'VOIDED') ON CONFLICT (shipment_key) DO NOTHING`,
            [randomUUID(), shipmentKey],
          );
          return toShipment((await this.byShipmentKey(shipmentKey))!);
        },
      },

      /**
       * Simulates a carrier outage on this node for `durationMs` (0 ends it): new shipments fail with a retryable 503.
       * `shipping:admin`.
       */
      outage: {
        audit: { entity: "carrier" },
        rest: "POST /outage",
        permissions: ["shipping:admin"],
        params: outageParams,
        async handler(this: ShippingThis, ctx: Context<ParamsOf<typeof outageParams>>) {
          this.outageUntil = Date.now() + ctx.params.durationMs;
          this.logger.warn(`Simulated carrier outage for ${ctx.params.durationMs} ms`);
          return { outageUntil: new Date(this.outageUntil).toISOString() };
        },
      },

      /** The shipments of an order (a few: all of them unless paged). `shipping:read` (operators). */
      list: {
        rest: "GET /",
        list: "page",
        permissions: ["shipping:read"],
        params: listParams,
        async handler(this: ShippingThis, ctx: Context<ParamsOf<typeof listParams>>): Promise<Page<Shipment>> {
          const rows = await this.rows<ShipmentRow>("SELECT * FROM shipments WHERE order_id = $1 ORDER BY created_at", [
            ctx.params.orderId,
          ]);
          return pageOf(rows.map(toShipment), ctx.params);
        },
      },
    },

    methods: {
      /** The one row of a shipment key, if any. */
      async byShipmentKey(this: ShippingThis, key: string) {
        const [row] = await this.rows<ShipmentRow>("SELECT * FROM shipments WHERE shipment_key = $1", [key]);
        return row;
      },
    },
  };

export default ShippingService;
