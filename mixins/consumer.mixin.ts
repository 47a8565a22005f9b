/**
 * Durable, idempotent consumers of the event channels. A service lists the event types it handles; for each, the
 * mixin subscribes its consumer group and runs every delivery through the same steps:
 *
 * 1. check the message: JSON, not larger than MAX_MESSAGE_BYTES, an envelope of the channel's type whose payload
 *    matches the catalogue. Anything else is a validation error: dead-lettered at once, nothing else touched;
 * 2. in one transaction of the service's own database, record the message id in the inbox and run the handler, so a
 *    redelivered message (a crash before the ack, a relay that published twice) is a no-op. Messages that arrive
 *    while the previous transaction is written share the next one (one at a time again if it fails);
 * 3. on a retryable error, deliver again after a backoff (a JetStream NAK with delay), up to the policy's attempts;
 *    then, or at once for a client error, publish a `message.deadLettered` record (original channel, group,
 *    attempts, error) that the dlq service stores, and acknowledge. If even that publish fails, the message is not
 *    acknowledged, so JetStream delivers it again: nothing is dropped. A group that consumes `message.deadLettered`
 *    (the dlq) never publishes one: it keeps what it gives up on in its own store, as the raw text it received.
 * 4. a refusal by the node's own overload protection (a full bulkhead queue, a local endpoint the circuit breaker
 *    took out) is backpressure, not a failed attempt: the delivery waits where it is and is tried again, for as long
 *    as it takes. It is neither NAKed (JetStream would count a redelivery) nor dead-lettered; the message keeps its
 *    in-flight slot, so the group takes no new messages meanwhile and intake slows instead of work being dropped.
 *
 * A message replayed from the dead-letter queue carries the dead letter's id; once it is processed (or found already
 * processed) the mixin reports `message.recovered`.
 */
import { randomUUID } from "node:crypto";
import type { Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import type { JsMsg } from "nats";
import { QueryTypes, type Sequelize, type Transaction } from "sequelize";
import { requestContext } from "../lib/request-context";
import {
  MAX_MESSAGE_BYTES,
  REPLAY_HEADER,
  deadLetterEnvelope,
  UndecodableMessage,
  deterministicId,
  errorRecord,
  isBackpressure,
  isRetryable,
  retryDelay,
  type DeliveryPolicy,
} from "../lib/delivery";
import type { ErrorRecord } from "../contracts/dead-letters";
import { invalidFields } from "../lib/errors";
import { eventCatalogueOf } from "../lib/event-types";
import { crashAt } from "../lib/failpoints";
import { createEnvelope, type EventCatalogue, type EventEnvelope } from "../lib/events";
import type { DbSettings } from "./db.mixin";

/** A consuming service: it has its own database (the db mixin), where its inbox and its handlers' writes go. */
export type ConsumerThis = Service<DbSettings> & { sequelize: Sequelize };

/**
 * Handles one event inside the transaction that also records it in the inbox, with `this` the service the mixin is
 * mixed into (`S`: its methods and state included).
 */
export type EventHandler<S extends ConsumerThis = ConsumerThis> = (
  this: S,
  envelope: EventEnvelope,
  transaction: Transaction,
) => Promise<void>;

export interface ConsumerMixinOptions<S extends ConsumerThis> {
  /** The consumer group: each group gets every message once; the service's replicas share the group's messages. */
  group: string;
  /** Event type (= channel) → handler. */
  handlers: Record<string, EventHandler<S>>;
  /**
   * Runs before a message is dead-lettered, with a stable id for what it emits (a retried dead-lettering calls it
   * again with the same id). A failure here leaves the message unacknowledged, to be delivered again.
   */
  onDeadLetter?: (
    this: S,
    failure: { deadLetterId: string; envelope: EventEnvelope | undefined; error: ErrorRecord; attempts: number },
  ) => Promise<void>;
  /**
   * Keeps a message the group gives up on in the group's own store, in place of publishing a `message.deadLettered`
   * record about it. Required of a group that consumes `message.deadLettered`: a dead letter about one of those goes
   * back to the same group, which would fail on it the same way and dead-letter it again, without end. A failure here
   * leaves the message unacknowledged, to be delivered again.
   */
  keepUnprocessable?: (this: S, message: UnprocessableMessage) => Promise<void>;
}

/** A message a group gave up on, as `keepUnprocessable` gets it: what arrived as text, not as a parsed envelope. */
export interface UnprocessableMessage {
  /** Stable for one delivery sequence: a retried keep reuses it. */
  id: string;
  channel: string;
  group: string;
  messageId: string | null;
  correlationId: string | null;
  /** The message as it arrived (its first MAX_MESSAGE_BYTES characters). */
  text: string;
  bytes: number;
  attempts: number;
  error: ErrorRecord;
}

const DEAD_LETTER_CHANNEL = "message.deadLettered";
/** Messages of one channel a consumer takes at once (JetStream's max ack pending for its group). */
export const CONSUMER_MAX_IN_FLIGHT = 64;
/** Messages written by one inbox transaction at most. */
const MAX_BATCH = 100;

interface PendingMessage {
  envelope: EventEnvelope;
  handler: EventHandler;
  resolve: (processed: boolean) => void;
  reject: (err: unknown) => void;
}

interface InboxBatch {
  queue: PendingMessage[];
  flushing: boolean;
}

interface Delivery {
  channel: string;
  payload: unknown;
  /** The JetStream message; absent with the in-memory adapter of the single-process default. */
  jetstream: JsMsg | null;
  headers: Record<string, string>;
}

function isJetStreamMessage(raw: unknown): raw is JsMsg {
  return typeof (raw as JsMsg | undefined)?.nak === "function" && Boolean((raw as JsMsg).info);
}

/** Throws a validation error unless the delivery is an envelope of its channel's type that `catalogue` accepts. */
async function checkMessage(delivery: Delivery, catalogue: EventCatalogue): Promise<EventEnvelope> {
  const { payload, channel } = delivery;
  if (payload instanceof UndecodableMessage) {
    throw invalidFields("The message is not JSON", [
      { field: "message", message: payload.reason, type: "notJson", actual: payload.excerpt.slice(0, 200) },
    ]);
  }
  const bytes = delivery.jetstream?.data.length ?? Buffer.byteLength(JSON.stringify(payload ?? null));
  if (bytes > MAX_MESSAGE_BYTES) {
    throw invalidFields(`The message is larger than ${MAX_MESSAGE_BYTES} bytes`, [
      { field: "message", message: "too large", type: "messageTooLarge", actual: bytes },
    ]);
  }
  const envelope = payload as EventEnvelope;
  await catalogue.validate(envelope);
  if (envelope.type !== channel) {
    throw invalidFields(`A ${envelope.type} event on the ${channel} channel`, [
      { field: "type", message: `expected ${channel}`, type: "wrongChannel", actual: envelope.type },
    ]);
  }
  return envelope;
}

/** The message as text, as it arrived (or as the in-memory adapter handed it over). */
function rawText(payload: unknown, jetstream: JsMsg | null): { text: string; bytes: number } {
  if (jetstream) {
    return {
      text: Buffer.from(jetstream.data).toString("utf8").slice(0, MAX_MESSAGE_BYTES),
      bytes: jetstream.data.length,
    };
  }
  if (payload instanceof UndecodableMessage) return { text: payload.excerpt, bytes: payload.bytes };
  const text = JSON.stringify(payload ?? null);
  return { text: text.slice(0, MAX_MESSAGE_BYTES), bytes: Buffer.byteLength(text) };
}

/** What a dead letter keeps of the message: the envelope, or an excerpt of what could not be one. */
function messageRecord(payload: unknown, jetstream: JsMsg | null): { message: unknown; replayable: boolean } {
  if (payload instanceof UndecodableMessage) {
    return { message: { excerpt: payload.excerpt, bytes: payload.bytes }, replayable: false };
  }
  const bytes = jetstream?.data.length ?? Buffer.byteLength(JSON.stringify(payload ?? null));
  if (bytes > MAX_MESSAGE_BYTES) {
    const text = jetstream ? Buffer.from(jetstream.data.subarray(0, 2048)).toString("utf8") : "";
    return { message: { excerpt: text, bytes }, replayable: false };
  }
  return { message: payload ?? null, replayable: true };
}

export function consumerMixin<S extends ConsumerThis = ConsumerThis>(
  options: ConsumerMixinOptions<S>,
): Partial<ServiceSchema> {
  const { group } = options;
  if (options.handlers[DEAD_LETTER_CHANNEL] && !options.keepUnprocessable) {
    throw new Error(`The ${group} group consumes ${DEAD_LETTER_CHANNEL}, so it must keep what it gives up on itself`);
  }

  /** A handler as the mixin runs it: on the service it is mixed into, which is the `S` the handler was written for. */
  const onService = (handler: EventHandler<S>): EventHandler =>
    function (this: ConsumerThis, envelope: EventEnvelope, transaction: Transaction) {
      return handler.call(this as S, envelope, transaction);
    };

  /** Runs a handler under the request that caused its message: its log lines name that request's id. */
  const runHandler = (svc: ConsumerThis, envelope: EventEnvelope, handler: EventHandler, transaction: Transaction) =>
    requestContext.run({ requestId: envelope.correlationId }, () => handler.call(svc, envelope, transaction));

  /** Records the message in the inbox and runs the handler, in one transaction. False when it was processed before. */
  async function processOnce(svc: ConsumerThis, envelope: EventEnvelope, handler: EventHandler): Promise<boolean> {
    return svc.sequelize.transaction(async (transaction) => {
      const fresh = await svc.sequelize.query(
        `INSERT INTO inbox (consumer_group, message_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING RETURNING message_id`,
        { bind: [group, envelope.id], type: QueryTypes.SELECT, transaction },
      );
      if (fresh.length === 0) return false;
      await runHandler(svc, envelope, handler, transaction);
      // The crash window between a message's processing and its commit, for the fault tests.
      crashAt(svc.settings.config.failpoints, `consumer.committing:${envelope.type}`);
      return true;
    });
  }

  /**
   * Messages that arrive while the group's previous transaction is being written share the next one: one multi-row
   * inbox insert, the handlers one after the other, one commit for all. If anything in it fails, the batch is
   * rolled back and its messages are processed one at a time again, so only the one that fails fails (and is
   * retried or dead-lettered on its own). One transaction at a time per service: a batch holds one connection, and
   * a handler needing a second one (a call to its own service) finds it free.
   */
  const batches = new WeakMap<ConsumerThis, InboxBatch>();

  function processBatched(svc: ConsumerThis, envelope: EventEnvelope, handler: EventHandler): Promise<boolean> {
    let batch = batches.get(svc);
    if (!batch) batches.set(svc, (batch = { queue: [], flushing: false }));
    const waiting = batch;
    return new Promise((resolve, reject) => {
      waiting.queue.push({ envelope, handler, resolve, reject });
      if (!waiting.flushing) void flush(svc, waiting);
    });
  }

  async function flush(svc: ConsumerThis, batch: InboxBatch): Promise<void> {
    batch.flushing = true;
    while (batch.queue.length > 0) {
      const taken = batch.queue.splice(0, MAX_BATCH);
      if (taken.length > 1) {
        try {
          const processed = await processTogether(svc, taken);
          taken.forEach((pending, index) => pending.resolve(processed[index]));
          continue;
        } catch {
          // One at a time again, below.
        }
      }
      for (const pending of taken) {
        await processOnce(svc, pending.envelope, pending.handler).then(pending.resolve, pending.reject);
      }
    }
    batch.flushing = false;
  }

  /** One transaction for several messages; for each, whether it was new (a repeat in the batch is not). */
  async function processTogether(svc: ConsumerThis, taken: PendingMessage[]): Promise<boolean[]> {
    return svc.sequelize.transaction(async (transaction) => {
      const inserted = await svc.sequelize.query<{ message_id: string }>(
        `INSERT INTO inbox (consumer_group, message_id) SELECT $1, unnest($2::uuid[])
         ON CONFLICT DO NOTHING RETURNING message_id`,
        { bind: [group, taken.map((pending) => pending.envelope.id)], type: QueryTypes.SELECT, transaction },
      );
      const fresh = new Set(inserted.map((row) => row.message_id));
      const processed: boolean[] = [];
      for (const pending of taken) {
        // The same message twice in one batch (a redelivery) is new once.
        const isNew = fresh.delete(pending.envelope.id);
        if (isNew) await runHandler(svc, pending.envelope, pending.handler, transaction);
        processed.push(isNew);
      }
      for (const channel of new Set(taken.map((pending) => pending.envelope.type))) {
        crashAt(svc.settings.config.failpoints, `consumer.committing:${channel}`);
      }
      return processed;
    });
  }

  async function deadLetter(svc: ConsumerThis, delivery: Delivery, err: unknown, attempts: number): Promise<void> {
    const envelope = isEnvelopeLike(delivery.payload) ? delivery.payload : undefined;
    const error = errorRecord(err);
    // One delivery sequence, one dead letter: a retried dead-lettering publishes the same id, which collapses.
    const deadLetterId = deterministicId(
      group,
      delivery.channel,
      delivery.jetstream ? `seq:${delivery.jetstream.seq}` : randomUUID(),
    );
    await options.onDeadLetter?.call(svc as S, { deadLetterId, envelope, error, attempts });
    if (options.keepUnprocessable) {
      await options.keepUnprocessable.call(svc as S, {
        id: deadLetterId,
        channel: delivery.channel,
        group,
        messageId: envelope?.id ?? null,
        // Whatever the message says, unchecked: a dead letter about a dead letter may be anything.
        correlationId: typeof envelope?.correlationId === "string" ? envelope.correlationId : null,
        ...rawText(delivery.payload, delivery.jetstream),
        attempts,
        error,
      });
      svc.logger.error(
        `Kept unprocessable ${delivery.channel} message ${envelope?.id ?? "(not an envelope)"} of ${group} after ` +
          `${attempts} attempt(s): ${error.type} ${error.message}`,
      );
      return;
    }
    const record = deadLetterEnvelope(
      {
        channel: delivery.channel,
        group,
        messageId: envelope?.id ?? null,
        ...messageRecord(delivery.payload, delivery.jetstream),
        attempts,
        error,
      },
      { source: svc.name, correlationId: envelope?.correlationId ?? deadLetterId, causationId: envelope?.id ?? null },
    );
    record.id = deadLetterId;
    await svc.broker.sendToChannel(record.type, record, { headers: { "Nats-Msg-Id": record.id } });
    svc.logger.error(
      `Dead-lettered ${delivery.channel} message ${envelope?.id ?? "(not an envelope)"} for ${group} after ` +
        `${attempts} attempt(s): ${error.type} ${error.message} (correlation ${record.correlationId})`,
    );
  }

  async function reportRecovered(svc: ConsumerThis, delivery: Delivery, envelope: EventEnvelope): Promise<void> {
    const deadLetterId = delivery.headers[REPLAY_HEADER];
    const notice = createEnvelope(
      "message.recovered",
      { deadLetterId, channel: delivery.channel, group, messageId: envelope.id },
      { source: svc.name, correlationId: envelope.correlationId, causationId: envelope.id },
    );
    notice.id = deterministicId("recovered", deadLetterId, group);
    await svc.broker.sendToChannel(notice.type, notice, { headers: { "Nats-Msg-Id": notice.id } });
  }

  function channel(name: string, handler: EventHandler) {
    return {
      group,
      // The messages in flight are what a batch can take (their transactions are written one at a time, so the pool
      // is not what bounds them).
      maxInFlight: CONSUMER_MAX_IN_FLIGHT,
      // The adapter's own retry limit is never reached: our policy acks or NAKs every message itself and throws
      // only when even dead-lettering failed, which must mean "deliver again".
      maxRetries: Number.MAX_SAFE_INTEGER,
      async handler(this: ConsumerThis, payload: unknown, raw: unknown) {
        const policy = this.settings.config.delivery;
        const jetstream = isJetStreamMessage(raw) ? raw : null;
        const delivery: Delivery = {
          channel: name,
          payload,
          jetstream,
          headers: this.broker.channelAdapter.parseMessageHeaders(raw) ?? {},
        };
        const attempt = jetstream ? jetstream.info.redeliveryCount : 1;
        // A handler may take longer than the ack wait (a saga step waiting for its participant): tell JetStream it
        // is still being worked on, so it is not delivered again meanwhile.
        const keepAlive = jetstream && setInterval(() => jetstream.working(), policy.ackWaitMs / 2);
        try {
          await deliver(this, delivery, handler, attempt, policy);
        } finally {
          if (keepAlive) clearInterval(keepAlive);
        }
      },
    };
  }

  /** Checks, processes or retries, and dead-letters one delivery; returns once it is acknowledged or NAKed. */
  async function deliver(
    svc: ConsumerThis,
    delivery: Delivery,
    handler: EventHandler,
    firstAttempt: number,
    policy: DeliveryPolicy,
  ): Promise<void> {
    const name = delivery.channel;
    const { jetstream } = delivery;
    let attempt = firstAttempt;
    // Waits for backpressure back off like retries do, but on a count of their own that never reaches the policy's.
    let backpressureWaits = 0;
    for (;;) {
      try {
        const envelope = await checkMessage(delivery, eventCatalogueOf(svc.broker));
        const processed = await processBatched(svc, envelope, handler);
        if (!processed) svc.logger.debug(`${name} ${envelope.id} already processed by ${group}`);
        if (delivery.headers[REPLAY_HEADER]) await reportRecovered(svc, delivery, envelope);
        return;
      } catch (err) {
        if (isBackpressure(err, svc.broker.nodeID)) {
          backpressureWaits += 1;
          const delay = retryDelay(policy, backpressureWaits);
          svc.logger.info(
            `${name} delivery to ${group} held back by backpressure (${(err as Error).message}); again in ${delay} ms`,
          );
          await new Promise((resolve) => setTimeout(resolve, delay));
          continue;
        }
        if (!isRetryable(err) || attempt >= policy.maxAttempts) {
          await deadLetter(svc, delivery, err, attempt);
          return;
        }
        const delay = retryDelay(policy, attempt);
        svc.logger.warn(
          `${name} delivery ${attempt}/${policy.maxAttempts} to ${group} failed (${(err as Error).message}); ` +
            `again in ${delay} ms`,
        );
        if (jetstream) {
          jetstream.nak(delay);
          return;
        }
        // The in-memory adapter does not redeliver: wait and try again here.
        await new Promise((resolve) => setTimeout(resolve, delay));
        attempt += 1;
      }
    }
  }

  const schema: Partial<ServiceSchema<ServiceSettingSchema>> = {
    channels: Object.fromEntries(
      Object.entries(options.handlers).map(([name, handler]) => [name, channel(name, onService(handler))]),
    ),
  };
  return schema as Partial<ServiceSchema>;
}

function isEnvelopeLike(payload: unknown): payload is EventEnvelope {
  return typeof payload === "object" && payload !== null && typeof (payload as EventEnvelope).id === "string";
}
