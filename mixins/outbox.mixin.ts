/**
 * A service's transactional outbox (lib/outbox.ts). `enqueueEvent` validates an envelope against the event
 * catalogue and writes it in the caller's transaction. Once that transaction has committed, the envelope is
 * published from memory to the durable channel named after the event type (JetStream de-duplicates on the message
 * id) and its row marked sent: commits of the same tick share one publish batch and one UPDATE. The outbox row is
 * the safety net: a relay looks for rows still unsent a moment after they were written (the process died before it
 * published, publishing failed, NATS was down) and publishes them the same way, with a backoff while publishing
 * fails; nothing is dropped. It does not poll at a fast pace: a commit that wrote outbox rows notifies the relays of
 * its database (a trigger's NOTIFY, lib/outbox.ts), which then look a moment later; a slow poll
 * (OUTBOX_POLL_INTERVAL) covers notifications missed while the listening connection was down. A row published twice
 * (a crash between publish and mark) is dropped as a duplicate by JetStream's window and the consumers' inbox. A
 * channel's stream is created before its first publish, so events are kept even before any consumer group has
 * subscribed.
 */
import type { ConfiguredSettings } from "../lib/config";
import type { Context, Service, ServiceSchema } from "moleculer";
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";
import type { AuditLocals } from "../lib/audit";
import { auditEnvelope } from "../lib/audit-record";
import { MAX_MESSAGE_BYTES, channelsReady, ensureStream } from "../lib/delivery";
import { invalidFields } from "../lib/errors";
import { eventCatalogueOf } from "../lib/event-types";
import type { EventEnvelope } from "../lib/events";
import { crashAt, dropAt } from "../lib/failpoints";
import type { PublishOptions } from "../lib/in-process-channels";
import { OUTBOX_NOTIFY_CHANNEL, outboxRowsFrom } from "../lib/outbox";
import { listen, type PgListener } from "../lib/pg-listener";
import { storableJson } from "../lib/storable";
import { backoff } from "../lib/backoff";

export interface OutboxMixinOptions {
  batchSize?: number;
}

export interface OutboxMethods {
  /**
   * `messageId` (JetStream's `Nats-Msg-Id`, the envelope's id unless given): a new one sends an envelope again past
   * JetStream's duplicate window, for when the first was lost after it was acknowledged; the consumers' inbox still
   * drops it if the first arrived.
   */
  enqueueEvent(transaction: Transaction, envelope: EventEnvelope, messageId?: string): Promise<void>;
  /**
   * Writes the audit record of `ctx`'s call, which answers `result`, in `transaction`, with the change's `events` in the
   * same statement: the record is committed with the change or not at all, and the audit middleware, told so once it
   * has committed, publishes nothing for the call.
   */
  enqueueAudit(transaction: Transaction, ctx: Context, result: unknown, events?: EventEnvelope[]): Promise<void>;
  /**
   * The envelopes (and the audit record of `audit.ctx`'s call, answering `audit.result`), validated, as outbox rows
   * for a statement of the service's own that writes them with its change (from `outboxRowsFrom`, lib/outbox.ts);
   * once that statement has committed, the caller calls `committed()`.
   */
  prepareOutbox(events: EventEnvelope[], audit?: { ctx: Context; result: unknown }): Promise<PreparedOutbox>;
  relayOutbox(): Promise<number>;
  ensureStream(channel: string): Promise<void>;
}

interface OutboxState {
  sequelize: Sequelize;
  /** Set by the db mixin: where the relay listens for commits. */
  databaseUrl: string;
  outboxListener?: PgListener;
  outboxTimer?: NodeJS.Timeout;
  /** The relay's round in progress, which stopping waits for: the channel adapter disconnects right after. */
  outboxRound?: Promise<void>;
  outboxStopping: boolean;
  outboxFailures: number;
  /** Channels whose stream this process has made sure of. */
  outboxStreams: Set<string>;
  /** When sent rows were last pruned (ms since the epoch). */
  outboxPrunedAt: number;
  /** Rows committed in this process and not yet published from memory. */
  outboxCommitted: OutboxRow[];
  /** Ids of the rows this process is publishing from memory now: the relay leaves them alone. */
  outboxInFlight: Set<string>;
  /**
   * Publishes of committed rows in progress, which stopping waits for too. Several may run at once: in the
   * single-process default a publish lasts until the local consumers have processed the message.
   */
  outboxPublishing: Set<Promise<void>>;
}

type OutboxThis = Service<ConfiguredSettings> & OutboxState & OutboxMethods;

/**
 * Outbox rows ready to be written: `rows` is a JSON array of `{ id, channel, envelope }` for one statement
 * (`jsonb_to_recordset`), and `committed()` publishes them from memory once that statement has committed.
 */
export interface PreparedOutbox {
  rows: string;
  committed(): void;
}

/** Writes a prepared outbox's rows (`$1`); a message id already there is written once. */
const OUTBOX_INSERT = `INSERT INTO outbox (id, channel, envelope)
  SELECT id, channel, envelope FROM ${outboxRowsFrom("$1")} ON CONFLICT (id) DO NOTHING`;

interface OutboxRow {
  id: string;
  channel: string;
  envelope: EventEnvelope;
}

/** How long after its commit a row is left to the publish from memory before the relay takes it, in ms. */
const RELAY_GRACE_MS = 1000;
/** A woken relay's round comes this long after the grace, so the rows that woke it are past it by the database's clock. */
const WAKE_MARGIN_MS = 100;

export function outboxMixin(options: OutboxMixinOptions = {}): Partial<ServiceSchema> {
  const batchSize = options.batchSize ?? 100;

  /**
   * Publishes rows (pipelined on the one connection: events carry no order promise) and returns the ids JetStream
   * acknowledged and the failures. Holds the fault tests' points: a drop point's row counts as published without
   * being sent; a crash point kills the process after publishing and before the rows are marked.
   */
  async function publish(svc: OutboxThis, rows: OutboxRow[]) {
    for (const channel of new Set(rows.map((row) => row.channel))) await svc.ensureStream(channel);
    const results = await Promise.allSettled(
      rows.map((row) =>
        dropAt(svc.settings.config.failpoints, `outbox.drop:${row.channel}`)
          ? Promise.resolve()
          : svc.broker.sendToChannel(row.channel, row.envelope, {
              headers: { "Nats-Msg-Id": row.id },
              // In the single-process default: marked sent only once processed (lib/in-process-channels.ts).
              untilProcessed: true,
            } as PublishOptions),
      ),
    );
    const published = rows.filter((_, index) => results[index].status === "fulfilled");
    for (const channel of new Set(published.map((row) => row.channel)))
      crashAt(svc.settings.config.failpoints, `outbox.published:${channel}`);
    const failures = results.flatMap((result, index) =>
      result.status === "rejected" ? [{ id: rows[index].id, error: (result.reason as Error).message }] : [],
    );
    return { sent: published.map((row) => row.id), failures };
  }

  /** The rows committed since the last call, published from memory and marked sent; the relay takes any it missed. */
  async function publishCommitted(svc: OutboxThis): Promise<void> {
    const rows = svc.outboxCommitted.splice(0);
    // Nothing leaves before the node's consumer groups have subscribed: in memory, it would reach no one.
    if (rows.length === 0 || !channelsReady(svc.broker)) return;
    for (const row of rows) svc.outboxInFlight.add(row.id);
    try {
      const { sent } = await publish(svc, rows);
      if (sent.length > 0) {
        // Rows a relay round holds (it took them while this publish was slow) are left to it: waiting for its
        // locks would hold a connection for as long as its publish lasts.
        await svc.sequelize.query(
          `UPDATE outbox SET sent_at = now() WHERE id IN (
             SELECT id FROM outbox WHERE id = ANY($1::uuid[]) AND sent_at IS NULL FOR UPDATE SKIP LOCKED)`,
          { bind: [sent] },
        );
      }
    } catch (err) {
      svc.logger.debug(`Outbox: publishing from memory failed (${(err as Error).message}); the relay takes over`);
    } finally {
      for (const row of rows) svc.outboxInFlight.delete(row.id);
    }
  }

  /** Validates the envelopes and makes them outbox rows (see `PreparedOutbox`). */
  async function prepareRows(
    svc: OutboxThis,
    entries: { envelope: EventEnvelope; messageId: string }[],
  ): Promise<PreparedOutbox> {
    const rows: OutboxRow[] = [];
    const texts: string[] = [];
    for (const { envelope, messageId } of entries) {
      await eventCatalogueOf(svc.broker).validate(envelope);
      const json = storableJson(envelope);
      if (Buffer.byteLength(json) > MAX_MESSAGE_BYTES) {
        throw invalidFields(`The ${envelope.type} event is larger than ${MAX_MESSAGE_BYTES} bytes`, [
          { field: "payload", message: "too large", type: "messageTooLarge", actual: Buffer.byteLength(json) },
        ]);
      }
      // What is published is what the row holds (its text made storable), as the relay would publish it.
      rows.push({ id: messageId, channel: envelope.type, envelope: JSON.parse(json) as EventEnvelope });
      texts.push(`{"id":${JSON.stringify(messageId)},"channel":${JSON.stringify(envelope.type)},"envelope":${json}}`);
    }
    return {
      rows: `[${texts.join(",")}]`,
      committed() {
        for (const row of rows) crashAt(svc.settings.config.failpoints, `outbox.committed:${row.channel}`);
        if (svc.outboxStopping) return;
        const wasEmpty = svc.outboxCommitted.length === 0;
        svc.outboxCommitted.push(...rows);
        // Commits of the same tick share one publish and one UPDATE.
        if (wasEmpty) {
          setImmediate(() => {
            const publishing: Promise<void> = publishCommitted(svc).finally(() =>
              svc.outboxPublishing.delete(publishing),
            );
            svc.outboxPublishing.add(publishing);
          });
        }
      },
    };
  }

  /** Writes prepared rows in `transaction`, in one statement, and publishes them once it has committed. */
  async function writeRows(svc: OutboxThis, transaction: Transaction, prepared: PreparedOutbox): Promise<void> {
    await svc.sequelize.query(OUTBOX_INSERT, { bind: [prepared.rows], transaction });
    transaction.afterCommit(() => prepared.committed());
  }

  /** The audit record of `ctx`'s call, answering `result`, as an outbox entry. */
  function auditEntry(svc: OutboxThis, ctx: Context, result: unknown) {
    const declared = ctx.action?.audit;
    if (!declared) throw new Error(`${ctx.action?.name ?? "this action"} declares no audit`);
    const envelope = auditEnvelope(ctx, { name: ctx.action!.name!, service: svc.name, declared }, result);
    return { envelope, messageId: envelope.id };
  }

  const schema: Partial<ServiceSchema<ConfiguredSettings, OutboxMethods, OutboxState>> = {
    methods: {
      /** Validates the envelope and writes it in `transaction`; the same message id twice is written once. */
      async enqueueEvent(this: OutboxThis, transaction: Transaction, envelope: EventEnvelope, messageId = envelope.id) {
        await writeRows(this, transaction, await prepareRows(this, [{ envelope, messageId }]));
      },

      async enqueueAudit(
        this: OutboxThis,
        transaction: Transaction,
        ctx: Context,
        result,
        events: EventEnvelope[] = [],
      ) {
        await writeRows(this, transaction, await this.prepareOutbox(events, { ctx, result }));
      },

      async prepareOutbox(this: OutboxThis, events: EventEnvelope[], audit?: { ctx: Context; result: unknown }) {
        const entries = events.map((envelope) => ({ envelope, messageId: envelope.id }));
        if (audit) entries.push(auditEntry(this, audit.ctx, audit.result));
        const prepared = await prepareRows(this, entries);
        if (!audit) return prepared;
        return {
          rows: prepared.rows,
          committed() {
            prepared.committed();
            (audit.ctx.locals as AuditLocals).auditWritten = true;
          },
        };
      },

      /**
       * One relay round: publishes up to a batch of the rows still unsent RELAY_GRACE_MS after they were written
       * (but for those this process is publishing from memory right now), oldest first, under row locks other relays
       * skip; the rows JetStream acknowledged are marked sent, the
       * others keep their error for the next round.
       */
      async relayOutbox(this: OutboxThis): Promise<number> {
        const { sent, failed } = await this.sequelize.transaction(async (transaction) => {
          const rows = await this.sequelize.query<OutboxRow>(
            `SELECT id, channel, envelope FROM outbox
             WHERE sent_at IS NULL AND available_at <= now() - make_interval(secs => $2 / 1000.0)
               AND id <> ALL($3::uuid[])
             ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
            { bind: [batchSize, RELAY_GRACE_MS, [...this.outboxInFlight]], type: QueryTypes.SELECT, transaction },
          );
          if (rows.length === 0) return { sent: 0, failed: 0 };
          const { sent, failures } = await publish(this, rows);
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

    created() {
      this.outboxCommitted = [];
      this.outboxInFlight = new Set();
      this.outboxPublishing = new Set();
    },

    async started() {
      this.outboxStopping = false;
      this.outboxFailures = 0;
      this.outboxStreams = new Set();
      this.outboxPrunedAt = 0;
      let running = false;
      /** When the next round is due (ms since the epoch), while no round runs. */
      let dueAt = 0;
      /** A wake-up that came while a round ran: the round after it is due then at the latest. */
      let wakeAt = Infinity;
      const runAt = (at: number) => {
        dueAt = at;
        this.outboxTimer = setTimeout(
          () => {
            running = true;
            this.outboxRound = round().finally(() => (running = false));
          },
          Math.max(0, at - Date.now()),
        );
      };
      const round = async () => {
        // A commit wakes the relay (LISTEN/NOTIFY): the poll only covers a notification missed while not listening.
        let delay = this.settings.config.delivery.outboxPollMs;
        if (channelsReady(this.broker)) {
          try {
            if (Date.now() - this.outboxPrunedAt > PRUNE_EVERY_MS) {
              // Sent rows are history once JetStream's duplicate window has passed; a week of it helps debugging.
              await this.sequelize.query(
                `DELETE FROM outbox WHERE sent_at < now() - interval '${KEEP_SENT_DAYS} days'`,
              );
              this.outboxPrunedAt = Date.now();
            }
            const sent = await this.relayOutbox();
            this.outboxFailures = 0;
            if (sent === batchSize) delay = 0;
          } catch (err) {
            this.outboxFailures += 1;
            delay = backoff(this.outboxFailures, 1000, 5000);
            if (!(err instanceof OutboxStalled) || this.outboxFailures % 10 === 1) {
              this.logger.warn(`Outbox relay: ${(err as Error).message}; retrying in ${delay} ms`);
            }
          }
        } else {
          // Not subscribed yet: soon again, not at the idle pace.
          delay = Math.min(delay, 1000);
        }
        const at = Math.min(Date.now() + delay, wakeAt);
        wakeAt = Infinity;
        if (!this.outboxStopping) runAt(at);
      };
      // A commit somewhere wrote outbox rows: a round once they are past the grace, unless one is due sooner.
      const wake = () => {
        const at = Date.now() + RELAY_GRACE_MS + WAKE_MARGIN_MS;
        if (this.outboxStopping) return;
        if (running) {
          wakeAt = Math.min(wakeAt, at);
        } else if (at < dueAt) {
          clearTimeout(this.outboxTimer);
          runAt(at);
        }
      };
      this.outboxListener = listen(this.databaseUrl, OUTBOX_NOTIFY_CHANNEL, wake, (err) =>
        this.logger.debug(`Outbox relay: not listening for commits (${err.message}); polling meanwhile`),
      );
      runAt(Date.now());
    },

    async stopped() {
      this.outboxStopping = true;
      clearTimeout(this.outboxTimer);
      await Promise.all([this.outboxListener?.close(), this.outboxRound, ...this.outboxPublishing]);
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
