/**
 * The rules of durable delivery, as plain data and functions (no broker): which failures are retried, how long to
 * wait before the next attempt, what a dead letter records about an error, and how a message that is not even an
 * envelope (not JSON, too large) is told apart from one that is. `mixins/consumer.mixin.ts` applies them.
 */
import type { ErrorRecord } from "../contracts/dead-letters";
import { createHash } from "node:crypto";
import { Serializers } from "moleculer";
import { createEnvelope, type EventEnvelope } from "./events";
import { backoff } from "./backoff";

/** Largest message a consumer accepts (and a producer enqueues), in bytes of its JSON. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** Header a replayed message carries: the dead letter it came from. */
export const REPLAY_HEADER = "x-dead-letter-id";

export interface DeliveryPolicy {
  /** Deliveries of one message to one consumer group before it is dead-lettered (retryable errors only). */
  maxAttempts: number;
  /** Delay before the second attempt, in ms; doubled for each further attempt. */
  retryDelayMs: number;
  /** Upper bound of the delay, in ms. */
  maxRetryDelayMs: number;
}

/** The delay before attempt `attempt + 1`, after `attempt` failed deliveries (1-based). */
export function retryDelay(policy: DeliveryPolicy, attempt: number): number {
  return backoff(attempt, policy.retryDelayMs, policy.maxRetryDelayMs);
}

/** What a dead letter keeps of an error: the same `{ name, message, code, type, data }` shape clients get. */
interface ErrorLike {
  name?: string;
  message?: string;
  code?: unknown;
  type?: string;
  data?: unknown;
  retryable?: boolean;
}

export function errorRecord(err: unknown): ErrorRecord {
  const e = (err ?? {}) as ErrorLike;
  return {
    name: e.name ?? "Error",
    message: e.message ?? String(err),
    code: typeof e.code === "number" ? e.code : 500,
    type: e.type ?? "UNKNOWN_ERROR",
    data: e.data ?? null,
  };
}

/**
 * A client error (4xx: bad data, a rule the data breaks) fails the same way on every attempt, so it is dead-lettered
 * at once. Everything else (timeouts, unreachable services, a database that went away, a bug) may pass on a later
 * attempt, so it is retried with backoff.
 */
export function isRetryable(err: unknown): boolean {
  const e = (err ?? {}) as ErrorLike;
  if (e.retryable) return true;
  return !(typeof e.code === "number" && e.code >= 400 && e.code < 500);
}

/**
 * A refusal by this node's own overload protection: a bulkhead whose queue is full (`QUEUE_FULL`), or a local endpoint
 * the circuit breaker has taken out (`SERVICE_NOT_AVAILABLE` naming this node). It says nothing about the message, only
 * that the node is busy, so it is backpressure: the delivery waits and is tried again without using up an attempt, and
 * is never dead-lettered for it. Counting it would turn a burst into dead letters (and sagas that never end).
 */
export function isBackpressure(err: unknown, localNodeID: string): boolean {
  const e = (err ?? {}) as ErrorLike;
  if (e.type === "QUEUE_FULL") return true;
  return e.type === "SERVICE_NOT_AVAILABLE" && (e.data as { nodeID?: unknown } | null)?.nodeID === localNodeID;
}

/** A message whose bytes are not JSON. The channel serializer returns it instead of throwing, so it can be parked. */
export class UndecodableMessage {
  constructor(
    /** The first bytes, as text, for the operator to look at. */
    readonly excerpt: string,
    readonly bytes: number,
    readonly reason: string,
  ) {}
}

/**
 * JSON as the channels' wire format, but a message that does not parse becomes an `UndecodableMessage` rather than
 * an exception inside the adapter, where it would be retried blindly and never reach our dead-letter queue.
 */
export class TolerantJsonSerializer extends Serializers.JSON {
  override deserialize(buffer: Buffer): unknown {
    try {
      return super.deserialize(buffer);
    } catch (err) {
      return new UndecodableMessage(buffer.subarray(0, 2048).toString("utf8"), buffer.length, (err as Error).message);
    }
  }
}

/** A UUID derived from `parts`, so the same delivery always yields the same dead-letter id (duplicates collapse). */
export function deterministicId(...parts: (string | number)[]): string {
  const hex = createHash("sha256").update(parts.join("\u0000")).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Kept on the broker itself, not in a module-level set: several nodes may run in one process (tests, benches), each
 * with its own channels. The symbol is registry-wide so that a second copy of this module (a bundler's) agrees.
 */
const CHANNELS_READY = Symbol.for("aicunet.channelsReady");
type Markable = { [CHANNELS_READY]?: boolean };

/** Set by the ChannelsReady middleware once every consumer group of the node has subscribed, cleared on stop. */
export function setChannelsReady(broker: object, ready: boolean): void {
  (broker as Markable)[CHANNELS_READY] = ready;
}

/** Publishers hold their messages (in the outbox, the audit spool, the log buffer) until this is true. */
export function channelsReady(broker: object): boolean {
  return (broker as Markable)[CHANNELS_READY] === true;
}

/** The part of the channels adapter that streams are made with (NATS only; the in-memory adapter has none). */
export interface StreamMaker {
  addPrefixTopic(name: string): string;
  createStream?(name: string, subjects: string[], options: object): Promise<unknown>;
}

/**
 * Creates a channel's JetStream stream, named as the adapter names it when a consumer group subscribes. Callers wait
 * for `channelsReady` first: before the adapter has connected it would log an error and carry on as if the stream
 * existed, which counted toward the error-rate alert on every clean start.
 */
export async function ensureStream(adapter: StreamMaker, channel: string): Promise<void> {
  if (!adapter.createStream) return;
  const subject = adapter.addPrefixTopic(channel);
  await adapter.createStream(subject.split(".").join("_"), [subject], {});
}

/** What the dlq service keeps of a message a consumer group gave up on. */
export interface DeadLetterRecord {
  channel: string;
  group: string;
  messageId: string | null;
  message: unknown;
  replayable: boolean;
  attempts: number;
  error: ErrorRecord;
}

/** The `message.deadLettered` envelope for a dead letter, failed now. */
/** The `message.deadLettered` payload: the record, and when the group gave up. */
export type DeadLetteredPayload = DeadLetterRecord & { failedAt: string };

export function deadLetterEnvelope(
  record: DeadLetterRecord,
  context: { source: string; correlationId: string; causationId: string | null },
): EventEnvelope<DeadLetteredPayload> {
  return createEnvelope("message.deadLettered", { ...record, failedAt: new Date().toISOString() }, context);
}
