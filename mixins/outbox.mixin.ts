/**
 * The relay of a service's transactional outbox (lib/outbox.ts). `enqueueEvent` validates an envelope against the
 * event catalogue and writes it in the caller's transaction; a background loop publishes unsent rows to the
 * durable channel named after the event type (JetStream de-duplicates on the envelope id) and marks them sent.
 * A commit that enqueued events starts a round at once; otherwise the relay polls (for rows that were waiting,
 * and for other replicas' rows). Publishing failures (the channel adapter not connected yet, NATS down) leave the
 * rows for the next round, with a backoff; nothing is dropped. The relay creates a channel's stream before its
 * first publish, so events are kept even before any consumer group has subscribed.
 */
import type { Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";
import { MAX_MESSAGE_BYTES, channelsReady, ensureStream } from "../lib/delivery";
import { invalidFields } from "../lib/errors";
import { eventCatalogue } from "../lib/event-types";
import type { EventEnvelope } from "../lib/events";
import { crashAt, dropAt } from "../lib/failpoints";
import { storableJson } from "../lib/storable";

export interface OutboxMixinOptions {
  /** Pause between rounds when the outbox is empty, in ms. */
  idleMs?: number;
  batchSize?: number;
}

export interface OutboxMethods {
  /**
   * `delayMs`: publish no earlier than that from now (a scheduled retry). `messageId` (JetStream's `Nats-Msg-Id`,
   * the envelope's id unless given): a new one sends an envelope again past JetStream's duplicate window, for when
   * the first was lost after it was acknowledged; the consumers' inbox still drops it if the first arrived.
   */
  enqueueEvent(transaction: Transaction, envelope: EventEnvelope, delayMs?: number, messageId?: string): Promise<void>;
  relayOutbox(): Promise<number>;
  ensureStream(channel: string): Promise<void>;
}

interface OutboxState {
  sequelize: Sequelize;
  outboxTimer?: NodeJS.Timeout;
  /** The round in progress, which stopping waits for: the channel adapter disconnects right after. */
  outboxRound?: Promise<void>;
  outboxStopping: boolean;
  outboxFailures: number;
  /** Channels whose stream this process has made sure of. */
  outboxStreams: Set<string>;
  /** When sent rows were last pruned (ms since the epoch). */
  outboxPrunedAt: number;
  /** A round is running; a commit meanwhile sets `outboxWoken` so another follows at once. */
  outboxBusy: boolean;
  outboxWoken: boolean;
  /** Starts a round now (after a commit that enqueued events), unless one runs or publishing is failing. */
  outboxKick?: () => void;
}

type OutboxThis = Service & OutboxState & OutboxMethods;

interface OutboxRow {
  seq: string;
  id: string;
  channel: string;
  envelope: EventEnvelope;
}

export function outboxMixin(options: OutboxMixinOptions = {}): Partial<ServiceSchema> {
  const idleMs = options.idleMs ?? 200;
  const batchSize = options.batchSize ?? 100;

  const schema: Partial<ServiceSchema<ServiceSettingSchema, OutboxMethods, OutboxState>> = {
    methods: {
      /** Validates the envelope and writes it in `transaction`; the same envelope id twice is written once. */
      async enqueueEvent(
        this: OutboxThis,
        transaction: Transaction,
        envelope: EventEnvelope,
        delayMs = 0,
        messageId = envelope.id,
      ) {
        await eventCatalogue.validate(envelope);
        const json = storableJson(envelope);
        if (Buffer.byteLength(json) > MAX_MESSAGE_BYTES) {
          throw invalidFields(`The ${envelope.type} event is larger than ${MAX_MESSAGE_BYTES} bytes`, [
            { field: "payload", message: "too large", type: "messageTooLarge", actual: Buffer.byteLength(json) },
          ]);
        }
        await this.sequelize.query(
          `INSERT INTO outbox (id, channel, envelope, available_at)
           VALUES ($1, $2, $3, now() + make_interval(secs => $4 / 1000.0)) ON CONFLICT (id) DO NOTHING`,
          { bind: [messageId, envelope.type, json, delayMs], transaction },
        );
        // Publish as soon as it is committed rather than at the relay's next poll.
        if (delayMs === 0) transaction.afterCommit(() => this.outboxKick?.());
      },

      /**
       * One round: publishes up to a batch of unsent rows, oldest first, under row locks other relays skip. The
       * publishes of a batch are pipelined on the one connection (events carry no order promise); the rows JetStream
       * acknowledged are marked sent, the others keep their error for the next round.
       */
      async relayOutbox(this: OutboxThis): Promise<number> {
        const { sent, failed } = await this.sequelize.transaction(async (transaction) => {
          const rows = await this.sequelize.query<OutboxRow>(
            `SELECT seq, id, channel, envelope FROM outbox WHERE sent_at IS NULL AND available_at <= now()
             ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
            { bind: [batchSize], type: QueryTypes.SELECT, transaction },
          );
          for (const channel of new Set(rows.map((row) => row.channel))) await this.ensureStream(channel);
          const results = await Promise.allSettled(
            rows.map((row) =>
              // A fault test's lost message: marked sent below like the others, never published.
              dropAt(`outbox.drop:${row.channel}`)
                ? Promise.resolve()
                : this.broker.sendToChannel(row.channel, row.envelope, { headers: { "Nats-Msg-Id": row.id } }),
            ),
          );
          const published = rows.filter((_, index) => results[index].status === "fulfilled");
          for (const channel of new Set(published.map((row) => row.channel))) crashAt(`outbox.published:${channel}`);
          const sent = published.map((row) => row.id);
          const failures = results.flatMap((result, index) =>
            result.status === "rejected" ? [{ id: rows[index].id, error: (result.reason as Error).message }] : [],
          );
          if (sent.length > 0) {
            await this.sequelize.query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1::uuid[])", {
              bind: [sent],
              transaction,
            });
          }
          if (failures.length > 0) {
            await this.sequelize.query(
              "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::uuid[])",
              { bind: [failures.map((failure) => failure.id), failures[0].error], transaction },
            );
          }
          return { sent: sent.length, failed: failures.length };
        });
        // After the commit: the rows that did go out stay marked sent, the others keep their error.
        if (failed > 0) throw new OutboxStalled(failed);
        return sent;
      },

      async ensureStream(this: OutboxThis, channel: string) {
        if (this.outboxStreams.has(channel)) return;
        await ensureStream(this.broker.channelAdapter, channel);
        this.outboxStreams.add(channel);
      },
    },

    async started() {
      this.outboxStopping = false;
      this.outboxFailures = 0;
      this.outboxStreams = new Set();
      this.outboxPrunedAt = 0;
      this.outboxBusy = false;
      this.outboxWoken = false;
      const round = async () => {
        // Nothing leaves before the node's consumer groups have subscribed: in memory, it would reach no one.
        if (!channelsReady(this.broker)) {
          if (!this.outboxStopping) this.outboxTimer = setTimeout(schedule, idleMs);
          return;
        }
        this.outboxBusy = true;
        this.outboxWoken = false;
        let delay = idleMs;
        try {
          if (Date.now() - this.outboxPrunedAt > PRUNE_EVERY_MS) {
            // Sent rows are history once JetStream's duplicate window has passed; a week of it helps debugging.
            await this.sequelize.query(`DELETE FROM outbox WHERE sent_at < now() - interval '${KEEP_SENT_DAYS} days'`);
            this.outboxPrunedAt = Date.now();
          }
          const sent = await this.relayOutbox();
          this.outboxFailures = 0;
          if (sent === batchSize) delay = 0;
        } catch (err) {
          this.outboxFailures += 1;
          delay = Math.min(5000, idleMs * 2 ** Math.min(this.outboxFailures, 5));
          if (!(err instanceof OutboxStalled) || this.outboxFailures % 10 === 1) {
            this.logger.warn(`Outbox relay: ${(err as Error).message}; retrying in ${delay} ms`);
          }
        }
        this.outboxBusy = false;
        if (this.outboxWoken && this.outboxFailures === 0) delay = 0;
        if (!this.outboxStopping) this.outboxTimer = setTimeout(schedule, delay);
      };
      const schedule = () => {
        this.outboxRound = round();
      };
      let kickPending = false;
      this.outboxKick = () => {
        if (this.outboxStopping || this.outboxFailures > 0 || kickPending) return;
        if (this.outboxBusy) {
          this.outboxWoken = true;
          return;
        }
        // Commits of the same tick share the round this schedules.
        clearTimeout(this.outboxTimer);
        kickPending = true;
        this.outboxTimer = setTimeout(() => {
          kickPending = false;
          schedule();
        }, 0);
      };
      this.outboxTimer = setTimeout(schedule, 0);
    },

    async stopped() {
      this.outboxStopping = true;
      clearTimeout(this.outboxTimer);
      await this.outboxRound;
    },
  };
  // Typed against the state and methods it brings; a service's `mixins` take the untyped schema.
  return schema as unknown as Partial<ServiceSchema>;
}

const PRUNE_EVERY_MS = 10 * 60_000;
const KEEP_SENT_DAYS = 7;

/** A round that could not publish everything it locked (the rest stays unsent for the next round). */
class OutboxStalled extends Error {
  constructor(unsent: number) {
    super(`${unsent} event(s) not published yet`);
    this.name = "OutboxStalled";
  }
}
