/**
 * payments (own database): charges and refunds against a simulated provider with deterministic test payment methods,
 * like a real provider's test cards: `pm_card_ok` succeeds, `pm_card_declined` is declined (a business failure),
 * `pm_card_slow` answers after `PAYMENTS_SLOW_MS` (longer than a saga step may take), `pm_card_flaky` fails
 * transiently `PAYMENTS_FLAKY_FAILURES` times per charge, then succeeds; any other method is declined. A refund
 * outage can be simulated (`POST /api/payments/refund-outage`) to see compensations fail and sagas park.
 *
 * Every charge and refund is idempotent under the caller's key (`meta.idempotencyKey`, a saga step key): a repeated
 * charge returns the first result and never charges twice; a refund that arrives before its charge leaves a VOIDED
 * mark, so a charge that answers late is refused rather than taken.
 */
import { randomUUID } from "node:crypto";
import type { Context, Service, ServiceSchema } from "moleculer";
import { ConflictError, DependencyUnavailableError, PaymentDeclinedError, invalidFields } from "../lib/errors";
import type { GatewayMeta } from "../lib/gateway-meta";
import { pageOf, pageParams, type Page } from "../lib/paging";
import { paramsSchema, type ParamsOf } from "../lib/params";
import paymentMigrations from "../migrations/payments";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { movesInto } from "../contracts/lifecycle";
import { PAYMENT_LIFECYCLE, type Payment, type PaymentStatus } from "../contracts/payments";
import { toPayment, type PaymentRow } from "../lib/payment-rows";

/** Per-action fault tolerance of a call to the (simulated) provider. */
const PROVIDER_CALL = {
  // A caller that sets no timeout of its own waits this long (the saga sets its step timeout on every call).
  timeout: 10_000,
  // Transient provider errors are retried by Moleculer before the saga sees them.
  retryPolicy: { enabled: true, retries: 1, delay: 100, maxDelay: 500, factor: 2 },
  circuitBreaker: { enabled: true, threshold: 0.5, minRequestCount: 10, windowTime: 30, halfOpenTime: 5000 },
  bulkhead: { enabled: true, concurrency: 20, maxQueueSize: 200 },
};

function keyOf(ctx: Context<unknown, GatewayMeta>): string {
  const key = ctx.meta.idempotencyKey;
  if (!key) {
    throw invalidFields("A payment needs an idempotency key", [
      { field: "idempotencyKey", message: "required in meta", type: "required" },
    ]);
  }
  return key;
}

interface PaymentsMethods {
  byChargeKey(key: string): Promise<PaymentRow | undefined>;
  answer(row: PaymentRow): Payment;
}

type PaymentsThis = Service<DbSettings> & DbServiceThis & DbMethods & PaymentsMethods & { refundOutageUntil: number };

const chargeParams = paramsSchema({
  orderId: { type: "uuid" },
  amount: { type: "number", integer: true, min: 0 },
  currency: { type: "string", pattern: /^[A-Z]{3}$/ },
  paymentMethod: { type: "string", min: 1, max: 100 },
  $$strict: true,
});
const refundParams = paramsSchema({ chargeKey: { type: "string", min: 1, max: 300 }, $$strict: true });
const refundOutageParams = paramsSchema({
  durationMs: { type: "number", integer: true, min: 0, max: 3_600_000 },
  $$strict: true,
});
const listParams = paramsSchema({ orderId: { type: "uuid" }, ...pageParams(100), $$strict: true });

const PaymentsService: ServiceSchema<
  DbSettings,
  DbMethods & PaymentsMethods,
  DbServiceThis & { refundOutageUntil: number }
> = {
  name: "payments",
  mixins: [
    dbMixin({
      service: "payments",
      migrations: paymentMigrations,
    }),
  ],

  created(this: PaymentsThis) {
    this.refundOutageUntil = 0;
  },

  actions: {
    /**
     * Authorises and captures a payment for an order, once per `meta.idempotencyKey`. 402 `PAYMENT_DECLINED` for a
     * declined method (every repeat too), 503 (retryable) while the provider fails, 409 when the key was voided by a
     * refund that came first. System only (the order saga).
     */
    charge: {
      audit: { entity: "payment", idParam: "orderId" },
      ...PROVIDER_CALL,
      params: chargeParams,
      async handler(this: PaymentsThis, ctx: Context<ParamsOf<typeof chargeParams>, GatewayMeta>): Promise<Payment> {
        const key = keyOf(ctx);
        const { orderId, amount, currency, paymentMethod } = ctx.params;
        const { slowMs, flakyFailures } = this.settings.config.payments;
        // The slow provider is slow on every call for this card, repeats included.
        if (paymentMethod === "pm_card_slow") await new Promise((resolve) => setTimeout(resolve, slowMs));

        let status: PaymentStatus = "CHARGED";
        let reason: string | null = null;
        switch (paymentMethod) {
          case "pm_card_ok":
          case "pm_card_slow":
            break;
          case "pm_card_flaky": {
            // A repeat of a charge made does not call the provider again (its failures are counted per call).
            const existing = await this.byChargeKey(key);
            if (existing) return this.answer(existing);
            const [{ calls }] = await this.rows<{ calls: number }>(
              `INSERT INTO provider_calls (charge_key, calls) VALUES ($1, 1)
               ON CONFLICT (charge_key) DO UPDATE SET calls = provider_calls.calls + 1 RETURNING calls`,
              [key],
            );
            if (calls <= flakyFailures) {
              throw new DependencyUnavailableError(
                "payment provider",
                `transient failure ${calls} of ${flakyFailures}`,
              );
            }
            break;
          }
          case "pm_card_declined":
            [status, reason] = ["DECLINED", "card declined"];
            break;
          default:
            [status, reason] = ["DECLINED", "unknown payment method"];
        }
        // The key's one row, in one statement: a repeat, a concurrent duplicate (or a refund that voided the key
        // first) finds it there.
        const [inserted] = await this.rows<PaymentRow>(
          `INSERT INTO payments (id, charge_key, order_id, amount, currency, payment_method, status, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (charge_key) DO NOTHING RETURNING *`,
          [randomUUID(), key, orderId, amount, currency, paymentMethod, status, reason],
        );
        if (inserted?.status === "CHARGED") {
          this.logger.info(`Charged ${amount} ${currency} for order ${orderId} (${key})`);
        }
        const row = inserted ?? (await this.byChargeKey(key))!;
        return this.answer(row);
      },
    },

    /**
     * Refunds the charge made under `chargeKey`, once; with no charge yet, voids the key so a late charge is
     * refused. Idempotent: a repeat answers the same. System only (saga compensation).
     */
    refund: {
      audit: { entity: "payment", idParam: "chargeKey" },
      ...PROVIDER_CALL,
      params: refundParams,
      async handler(this: PaymentsThis, ctx: Context<ParamsOf<typeof refundParams>>): Promise<Payment> {
        const { chargeKey } = ctx.params;
        if (Date.now() < this.refundOutageUntil) {
          throw new DependencyUnavailableError("payment provider", "refunds are down (simulated)");
        }
        const [refunded] = await this.rows<PaymentRow>(
          `UPDATE payments SET status = 'REFUNDED', refunded_at = now() WHERE charge_key = $1 AND status = ANY($2)
           RETURNING *`,
          [chargeKey, movesInto(PAYMENT_LIFECYCLE, "REFUNDED")],
        );
        if (refunded) {
          this.logger.info(`Refunded ${refunded.amount} ${refunded.currency} for order ${refunded.order_id}`);
          return toPayment(refunded);
        }
        await this.rows(
          `INSERT INTO payments (id, charge_key, status, reason) VALUES ($1, $2, 'VOIDED', 'refunded before any charge')
           ON CONFLICT (charge_key) DO NOTHING`,
          [randomUUID(), chargeKey],
        );
        const row = (await this.byChargeKey(chargeKey))!;
        return toPayment(row);
      },
    },

    /**
     * Simulates a provider outage of refunds on this node for `durationMs` (0 ends it): refunds fail with a retryable
     * 503, so saga compensations keep failing. `payments:admin`.
     */
    refundOutage: {
      audit: { entity: "provider" },
      rest: "POST /refund-outage",
      permissions: ["payments:admin"],
      params: refundOutageParams,
      async handler(this: PaymentsThis, ctx: Context<ParamsOf<typeof refundOutageParams>>) {
        this.refundOutageUntil = Date.now() + ctx.params.durationMs;
        this.logger.warn(`Simulated refund outage for ${ctx.params.durationMs} ms`);
        return { refundOutageUntil: new Date(this.refundOutageUntil).toISOString() };
      },
    },

    /** The payments of an order (a few: all of them unless paged). `payments:read` (operators). */
    list: {
      rest: "GET /",
      list: "page",
      permissions: ["payments:read"],
      params: listParams,
      async handler(this: PaymentsThis, ctx: Context<ParamsOf<typeof listParams>>): Promise<Page<Payment>> {
        const rows = await this.rows<PaymentRow>("SELECT * FROM payments WHERE order_id = $1 ORDER BY created_at", [
          ctx.params.orderId,
        ]);
        return pageOf(rows.map(toPayment), ctx.params);
      },
    },
  },

  methods: {
    /** The one row of a charge key, if any. */
    async byChargeKey(this: PaymentsThis, key: string) {
      const [row] = await this.rows<PaymentRow>("SELECT * FROM payments WHERE charge_key = $1", [key]);
      return row;
    },

    /** The result a charge key stands for: the payment, or the refusal it recorded. */
    answer(row: PaymentRow): Payment {
      if (row.status === "DECLINED") {
        throw new PaymentDeclinedError(row.reason ?? "declined", { orderId: row.order_id, chargeKey: row.charge_key });
      }
      if (row.status === "VOIDED") {
        throw new ConflictError("This charge was voided by a refund before it was made", "CONFLICT", {
          chargeKey: row.charge_key,
        });
      }
      return toPayment(row);
    },
  },
};

export default PaymentsService;
