/**
 * A consumer for the event backbone's tests, run in its own process (test/support/probe-node.ts): group `probe` on
 * `order.created`, through the same consumer mixin as the real services, in its own database. Each processing writes
 * an `effects` row in the consumer transaction (no unique key: a message processed twice would leave two rows) and,
 * before that, an `attempts` row outside it (so tests see that a delivery started). Faults are rows the test writes
 * into `faults`, keyed by the order's shipping name: `slow` (takes 4 s), `poison` (fails with a retryable error).
 */
import type { ServiceSchema } from "moleculer";
import { QueryTypes, Sequelize, type Transaction } from "sequelize";
import { ensureDatabase } from "../../lib/database";
import { MoleculerRetryableError } from "../../lib/errors";
import type { EventEnvelope } from "../../lib/events";
import { consumerMixin, type ConsumerThis } from "../../mixins/consumer.mixin";
import type { Order } from "../../contracts/orders";

export const PROBE_SCHEMA = `
  CREATE TABLE IF NOT EXISTS inbox (
    consumer_group varchar(200) NOT NULL, message_id uuid NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, message_id));
  CREATE TABLE IF NOT EXISTS effects (message_id uuid NOT NULL, order_id uuid NOT NULL, at timestamptz DEFAULT now());
  CREATE TABLE IF NOT EXISTS attempts (message_id uuid NOT NULL, order_id uuid NOT NULL, at timestamptz DEFAULT now());
  CREATE TABLE IF NOT EXISTS faults (shipping_name text PRIMARY KEY, kind text NOT NULL);
`;

export function probeService(databaseUrl: string): ServiceSchema {
  const sequelize = new Sequelize(databaseUrl, { logging: false, pool: { max: 20 } });
  return {
    name: "probe",
    mixins: [
      consumerMixin({
        group: "probe",
        handlers: {
          async "order.created"(this: ConsumerThis, envelope: EventEnvelope, transaction: Transaction) {
            const { order } = envelope.payload as { order: Order };
            await sequelize.query("INSERT INTO attempts (message_id, order_id) VALUES ($1, $2)", {
              bind: [envelope.id, order.id],
            });
            const [fault] = await sequelize.query<{ kind: string }>(
              "SELECT kind FROM faults WHERE shipping_name = $1",
              { bind: [order.shippingAddress.name], type: QueryTypes.SELECT },
            );
            if (fault?.kind === "slow") await new Promise((resolve) => setTimeout(resolve, 4000));
            if (fault?.kind === "poison")
              throw new MoleculerRetryableError("probe: poisoned order", 500, "PROBE_FAULT");
            await sequelize.query("INSERT INTO effects (message_id, order_id) VALUES ($1, $2)", {
              bind: [envelope.id, order.id],
              transaction,
            });
          },
        },
      }),
    ],
    async created() {
      this.sequelize = sequelize;
    },
    async started() {
      await ensureDatabase(databaseUrl);
      await sequelize.query(PROBE_SCHEMA);
    },
    async stopped() {
      await sequelize.close();
    },
  };
}
