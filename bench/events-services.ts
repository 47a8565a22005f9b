/**
 * The two services of the event backbone benchmark (bench/events.ts), each on its own database as real services are:
 * - `benchProducer`: a service with the transactional outbox (mixins/outbox.mixin.ts) and its relay; the bench writes
 *   `order.created` envelopes into its outbox through `enqueueEvent`, one per transaction, as `orders` does;
 * - `benchConsumer`: consumer group `bench` on `order.created` through the consumer mixin (validation, inbox, retries,
 *   dead letters); its handler inserts one `effects` row per event in the consumer transaction and reports the event
 *   once that transaction has committed.
 * The bench owns the Sequelize instances (it migrates them before the broker starts and closes them after it stops).
 */
import type { Service, ServiceSchema } from "moleculer";
import type { Sequelize, Transaction } from "sequelize";
import type { Migration } from "../lib/database";
import type { EventEnvelope } from "../lib/events";
import { inboxMigration, outboxMigration } from "../lib/outbox";
import { consumerMixin, type ConsumerThis } from "../mixins/consumer.mixin";
import { outboxMixin, type OutboxMethods } from "../mixins/outbox.mixin";

export const PRODUCER_SERVICE = "benchProducer";
export const CONSUMER_GROUP = "bench";

export type ProducerService = Service & OutboxMethods & { sequelize: Sequelize };

export const producerMigrations: Migration[] = [outboxMigration("0001-outbox")];

export const consumerMigrations: Migration[] = [
  inboxMigration("0001-inbox"),
  {
    name: "0002-effects",
    async up({ sequelize }) {
      await sequelize.query(`
        CREATE TABLE effects (
          message_id uuid PRIMARY KEY,
          order_id uuid NOT NULL,
          occurred_at timestamptz NOT NULL,
          processed_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
      `);
    },
  },
];

export function producerService(sequelize: Sequelize): ServiceSchema {
  return {
    name: PRODUCER_SERVICE,
    mixins: [outboxMixin()],
    created() {
      this.sequelize = sequelize;
    },
  };
}

/** `onCommit` is called with each event once the transaction that processed it (inbox row, effect row) committed. */
export function consumerService(sequelize: Sequelize, onCommit: (envelope: EventEnvelope) => void): ServiceSchema {
  return {
    name: "benchConsumer",
    mixins: [
      consumerMixin({
        group: CONSUMER_GROUP,
        handlers: {
          async "order.created"(this: ConsumerThis, envelope: EventEnvelope, transaction: Transaction) {
            const { order } = envelope.payload as { order: { id: string } };
            await this.sequelize.query("INSERT INTO effects (message_id, order_id, occurred_at) VALUES ($1, $2, $3)", {
              bind: [envelope.id, order.id, envelope.occurredAt],
              transaction,
            });
            transaction.afterCommit(() => onCommit(envelope));
          },
        },
      }),
    ],
    created() {
      this.sequelize = sequelize;
    },
  };
}
