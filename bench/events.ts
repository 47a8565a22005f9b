/**
 * The event backbone against raw JetStream, in the same run, on one `nats-server -js` the bench starts (issue 5):
 * - `raw JetStream`: the `nats` client alone. `loops` concurrent publishers each send an `order.created` envelope
 *   (the same JSON the backbone carries, with `Nats-Msg-Id`) to a stream and wait for its PubAck; a durable push
 *   consumer configured as @moleculer/channels configures its consumers (queue group, manual explicit ack, deliver
 *   all, the same max_ack_pending as the backbone's consumer) parses each message and acks it.
 * - `outbox → JetStream → consumer`: one in-process broker (createNode, NATS transporter and channels) hosting a
 *   producer service with the outbox relay and a consumer service with the consumer mixin (bench/events-services.ts),
 *   each on its own PostgreSQL database. `loops` concurrent loops each write one `order.created` envelope per
 *   transaction through `enqueueEvent`; the relay publishes the rows, the consumer validates each message, records it
 *   in its inbox and inserts an effect row in one transaction, then acks.
 * Rate: messages from the first publish (or enqueue) to the last ack (or consumer commit). Delay: from the publish
 * call (or the envelope's `occurredAt`, set just before its enqueue transaction) to the ack (or the commit). Each
 * side gets a warm-up round first, drained before the measured round starts.
 * Two more measurements of the backbone, with their own raw counterpart where there is one (issue 15):
 * - fixed rate: `BENCH_EVENT_RATE` (1000) events per second for `BENCH_EVENT_RATE_SECONDS` (10), open loop, each in
 *   its own producer transaction; delay from that transaction's commit to the consumer transaction's commit (both
 *   `performance.now()` in this process);
 * - drain: `BENCH_EVENT_DRAIN` (50000) envelopes written into the outbox beforehand (not yet due), then made due at
 *   once; from that commit to the last consumer commit, against the raw target publishing and consuming as many.
 * Options: BENCH_EVENTS (measured messages per target, default 5000), BENCH_EVENT_LOOPS (default 4).
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { ServiceBroker } from "moleculer";
import { connect, consumerOpts, createInbox, type JsMsg, type NatsError } from "nats";
import { Client } from "pg";
import { QueryTypes, type Sequelize } from "sequelize";
import { configured, createNode } from "../bin/node";
import { loadConfig, type Config } from "../lib/config";
import { createSequelize, ensureDatabase, quoteIdentifier, runMigrations } from "../lib/database";
import { createEnvelope, type EventEnvelope } from "../lib/events";
import { storableJson } from "../lib/storable";
import { CONSUMER_MAX_IN_FLIGHT } from "../mixins/consumer.mixin";
import { startNats } from "../support/servers";
import {
  PRODUCER_SERVICE,
  consumerMigrations,
  consumerService,
  producerMigrations,
  producerService,
  type ProducerService,
} from "./events-services";

export interface EventRate {
  target: string;
  messagesPerSecond: number;
  p50: number;
  p99: number;
  count: number;
  seconds: number;
  /** CPU time of this process (load generator, client, and for the backbone the whole broker) per wall second. */
  processCpu: number;
}

export interface EventBench {
  raw: EventRate;
  backbone: EventRate;
  /** Commit → consumer commit at a fixed rate. */
  fixedRate: EventRate & { offeredPerSecond: number };
  /** A pre-filled outbox drained into the consumer, and raw JetStream with as many messages. */
  drain: { backbone: EventRate; raw: EventRate };
  envelopeBytes: number;
  loops: number;
  maxInFlight: number;
  /** Where the backbone's time went, in seconds from its first enqueue. */
  stages: { enqueued: number; lastRelayRound: number; lastCommit: number };
  check: { effects: number; inbox: number; unsent: number };
}

const WARMUP = 500;
/** The longest a round may take before the bench gives up, in ms. */
const ROUND_TIMEOUT = 120_000;

/** An `order.created` payload like the one orders.service.ts builds for a two-line order. */
function sampleOrder(i: number) {
  const now = new Date().toISOString();
  const line = (n: number, quantity: number, amount: number) => ({
    productId: randomUUID(),
    sku: `BENCH-SKU-${String(n).padStart(6, "0")}`,
    name: `Benchmark widget number ${n}, stainless steel, large`,
    quantity,
    unitPrice: { amount, currency: "EUR" },
  });
  return {
    id: randomUUID(),
    customerId: randomUUID(),
    status: "PENDING" as const,
    statusReason: null,
    total: { amount: 2 * 1299 + 4999 + 3 * 250, currency: "EUR" },
    lines: [line(i, 2, 1299), line(i + 1, 1, 4999), line(i + 2, 3, 250)],
    shippingAddress: {
      name: `Bench customer ${i}`,
      street: "1 Load Generator Street",
      city: "Testing",
      postalCode: "00000",
      country: "DE",
    },
    paymentMethod: "pm_card_ok",
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
}

const orderCreated = (i: number) =>
  createEnvelope("order.created", { order: sampleOrder(i) }, { source: "orders", correlationId: randomUUID() });

/** Runs `work(0 … count-1)` from `loops` concurrent loops. */
async function fromLoops(count: number, loops: number, work: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

/** Counts completions of a round and keeps their delays; `round(n)` resolves at the n-th. */
class Completions {
  delays: number[] = [];
  /** performance.now() of the last completion. */
  last = 0;
  private expected = 0;
  private done: () => void = () => undefined;

  round(expected: number): Promise<void> {
    this.delays = [];
    this.expected = expected;
    return new Promise((resolve) => {
      this.done = resolve;
    });
  }

  record(delayMs: number): void {
    this.delays.push(delayMs);
    this.last = performance.now();
    if (this.delays.length === this.expected) this.done();
  }
}

async function within<T>(promise: Promise<T>, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Gave up after ${ROUND_TIMEOUT} ms: ${what()}`)), ROUND_TIMEOUT);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function rate(target: string, count: number, elapsedMs: number, delays: number[], cpu: NodeJS.CpuUsage): EventRate {
  const sorted = [...delays].sort((a, b) => a - b);
  // Tenths of a millisecond: the raw delays are below one.
  const at = (q: number) =>
    Math.round((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0) * 10) / 10;
  return {
    target,
    messagesPerSecond: Math.round(count / (elapsedMs / 1000)),
    p50: at(0.5),
    p99: at(0.99),
    count,
    seconds: Number((elapsedMs / 1000).toFixed(2)),
    processCpu: Number(((cpu.user + cpu.system) / 1000 / elapsedMs).toFixed(2)),
  };
}

/** The baseline: publish and consume with the `nats` client alone. */
async function rawJetStream(
  natsUrl: string,
  count: number,
  loops: number,
  maxInFlight: number,
  cfg: Config,
  name: string,
) {
  const nc = await connect({ servers: natsUrl });
  const subject = name.replace(/_/g, ".");
  try {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name, subjects: [subject] });
    const js = nc.jetstream();
    const publishedAt = new Map<string, number>();
    const completions = new Completions();
    const opts = consumerOpts()
      .durable(name)
      .deliverTo(createInbox())
      .queue(name)
      .deliverAll()
      .manualAck()
      .ackExplicit()
      .ackWait(cfg.delivery.ackWaitMs)
      .maxAckPending(maxInFlight)
      .callback((err: NatsError | null, msg: JsMsg | null) => {
        if (err || !msg) return;
        const envelope = JSON.parse(Buffer.from(msg.data).toString("utf8")) as EventEnvelope;
        msg.ack();
        const started = publishedAt.get(envelope.id);
        publishedAt.delete(envelope.id);
        if (started !== undefined) completions.record(performance.now() - started);
      });
    const sub = await js.subscribe(subject, opts);
    const round = async (n: number) => {
      const envelopes = Array.from({ length: n }, (_, i) => orderCreated(i));
      const acked = completions.round(n);
      const cpu = process.cpuUsage();
      const started = performance.now();
      await fromLoops(n, loops, async (i) => {
        const envelope = envelopes[i];
        publishedAt.set(envelope.id, performance.now());
        await js.publish(subject, Buffer.from(JSON.stringify(envelope)), { msgID: envelope.id });
      });
      await within(acked, () => `raw JetStream acked ${completions.delays.length} of ${n}`);
      return rate(
        "raw JetStream (nats client)",
        n,
        completions.last - started,
        completions.delays,
        process.cpuUsage(cpu),
      );
    };
    await round(WARMUP);
    const measured = await round(count);
    sub.unsubscribe();
    return measured;
  } finally {
    await nc.close();
  }
}

function databaseUrl(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function dropDatabases(serverUrl: string, names: string[]): Promise<void> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    for (const name of names) await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** Outbox → JetStream → consumer commit, through the project's mixins in one broker. */
async function backbone(
  natsUrl: string,
  serverUrl: string,
  count: number,
  loops: number,
  rate_: number,
  rateSeconds: number,
  drainCount: number,
) {
  const id = randomBytes(4).toString("hex");
  const names = { producer: `bench_ev_${id}_producer`, consumer: `bench_ev_${id}_consumer` };
  const cfg: Config = {
    ...loadConfig({
      ...process.env,
      DATABASE_URL: serverUrl,
      TRANSPORTER: natsUrl,
      NAMESPACE: `bench-${id}`,
      NODE_ID: `bench-events-${id}`,
      METRICS_PORT: "0",
      LOG_LEVEL: "warn",
      LOG_FORMAT: "json",
      TRACING_EXPORTER: "none",
    }),
    services: [],
  };
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const sequelizes: Record<keyof typeof names, Sequelize> = {
      producer: createSequelize(databaseUrl(serverUrl, names.producer), cfg.database.poolMax),
      consumer: createSequelize(databaseUrl(serverUrl, names.consumer), cfg.database.poolMax),
    };
    cleanups.push(() => dropDatabases(serverUrl, Object.values(names)));
    cleanups.push(() => Promise.all(Object.values(sequelizes).map((s) => s.close())));
    for (const [role, migrations] of [
      ["producer", producerMigrations],
      ["consumer", consumerMigrations],
    ] as const) {
      const url = databaseUrl(serverUrl, names[role]);
      await ensureDatabase(url);
      await runMigrations(url, sequelizes[role], migrations);
    }

    const completions = new Completions();
    /** When each event's producer transaction committed (the fixed-rate phase sets it). */
    const committedAt = new Map<string, number>();
    const broker: ServiceBroker = await createNode(cfg);
    broker.createService(configured(producerService(sequelizes.producer), cfg));
    broker.createService(
      configured(
        consumerService(sequelizes.consumer, (envelope) => {
          const committed = committedAt.get(envelope.id);
          committedAt.delete(envelope.id);
          completions.record(
            committed !== undefined ? performance.now() - committed : Date.now() - Date.parse(envelope.occurredAt),
          );
        }),
        cfg,
      ),
    );
    await broker.start();
    cleanups.push(() => broker.stop());
    const producer = broker.getLocalService(PRODUCER_SERVICE) as ProducerService;

    const round = async (n: number) => {
      const committed = completions.round(n);
      const startedAt = Date.now();
      const cpu = process.cpuUsage();
      const started = performance.now();
      await fromLoops(n, loops, (i) =>
        producer.sequelize.transaction((transaction) => producer.enqueueEvent(transaction, orderCreated(i))),
      );
      const enqueued = performance.now();
      await within(committed, () => `the consumer committed ${completions.delays.length} of ${n}`);
      const used = process.cpuUsage(cpu);
      const [relay] = await sequelizes.producer.query<{ ms: number }>(
        "SELECT extract(epoch FROM max(sent_at)) * 1000 AS ms FROM outbox",
        { type: QueryTypes.SELECT },
      );
      return {
        rate: rate("outbox → JetStream → consumer", n, completions.last - started, completions.delays, used),
        stages: {
          enqueued: Number(((enqueued - started) / 1000).toFixed(2)),
          lastRelayRound: Number(((Number(relay.ms) - startedAt) / 1000).toFixed(2)),
          lastCommit: Number(((completions.last - started) / 1000).toFixed(2)),
        },
      };
    };
    await round(WARMUP);
    const measured = await round(count);

    // Fixed rate, open loop: each event is enqueued at its time, whatever the earlier ones are doing.
    const rateCount = rate_ * rateSeconds;
    const ratePhase = completions.round(rateCount);
    const rateCpu = process.cpuUsage();
    const rateStarted = performance.now();
    const enqueues: Promise<unknown>[] = [];
    for (let i = 0; i < rateCount; i++) {
      const wait = rateStarted + (i * 1000) / rate_ - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const envelope = orderCreated(i);
      enqueues.push(
        producer.sequelize.transaction(async (transaction) => {
          await producer.enqueueEvent(transaction, envelope);
          transaction.afterCommit(() => {
            committedAt.set(envelope.id, performance.now());
          });
        }),
      );
    }
    await Promise.all(enqueues);
    await within(ratePhase, () => `the consumer committed ${completions.delays.length} of ${rateCount}`);
    const fixedRate = {
      ...rate(
        "outbox → JetStream → consumer, fixed rate",
        rateCount,
        completions.last - rateStarted,
        completions.delays,
        process.cpuUsage(rateCpu),
      ),
      offeredPerSecond: rate_,
    };

    // Drain: the outbox filled beforehand (not yet due, so the relay leaves it), then all made due at once.
    for (let from = 0; from < drainCount; from += 1000) {
      const chunk = Array.from({ length: Math.min(1000, drainCount - from) }, (_, i) => orderCreated(from + i));
      await sequelizes.producer.query(
        `INSERT INTO outbox (id, channel, envelope, available_at)
         SELECT id, 'order.created', envelope, now() + interval '1 day'
         FROM unnest($1::uuid[], $2::jsonb[]) AS t(id, envelope)`,
        { bind: [chunk.map((envelope) => envelope.id), chunk.map((envelope) => storableJson(envelope))] },
      );
    }
    const drained = completions.round(drainCount);
    const drainCpu = process.cpuUsage();
    const drainStarted = performance.now();
    await sequelizes.producer.query("UPDATE outbox SET available_at = now() WHERE sent_at IS NULL");
    await within(drained, () => `the consumer committed ${completions.delays.length} of ${drainCount} drained`);
    const drain = rate(
      "outbox drain → JetStream → consumer",
      drainCount,
      completions.last - drainStarted,
      completions.delays,
      process.cpuUsage(drainCpu),
    );

    const countOf = async (sequelize: Sequelize, sql: string) =>
      Number((await sequelize.query<{ n: string }>(sql, { type: QueryTypes.SELECT }))[0].n);
    const check = {
      effects: await countOf(sequelizes.consumer, "SELECT count(*) AS n FROM effects"),
      inbox: await countOf(sequelizes.consumer, "SELECT count(*) AS n FROM inbox"),
      unsent: await countOf(sequelizes.producer, "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"),
    };
    return { ...measured, fixedRate, drain, check };
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: Error) => console.error(`events bench cleanup: ${err.message}`));
    }
  }
}

/** Both targets on one nats-server started for the run; `serverUrl` is a PostgreSQL server the bench may use. */
export async function eventBackbone(serverUrl: string): Promise<EventBench> {
  const count = Number(process.env.BENCH_EVENTS ?? 5000);
  const loops = Number(process.env.BENCH_EVENT_LOOPS ?? 4);
  const fixedRatePerSecond = Number(process.env.BENCH_EVENT_RATE ?? 1000);
  const rateSeconds = Number(process.env.BENCH_EVENT_RATE_SECONDS ?? 10);
  const drainCount = Number(process.env.BENCH_EVENT_DRAIN ?? 50_000);
  const nats = await startNats();
  try {
    const cfg = loadConfig({ ...process.env, DATABASE_URL: serverUrl });
    // What the consumer mixin gives each consumer (messages in flight), so both consumers get the same window.
    const maxInFlight = CONSUMER_MAX_IN_FLIGHT;
    const raw = await rawJetStream(nats.url, count, loops, maxInFlight, cfg, "bench_raw");
    const rawDrain = await rawJetStream(nats.url, drainCount, loops, maxInFlight, cfg, "bench_raw_drain");
    const {
      rate: viaBackbone,
      stages,
      check,
      fixedRate,
      drain,
    } = await backbone(nats.url, serverUrl, count, loops, fixedRatePerSecond, rateSeconds, drainCount);
    return {
      raw,
      backbone: viaBackbone,
      fixedRate,
      drain: { backbone: drain, raw: rawDrain },
      envelopeBytes: Buffer.byteLength(JSON.stringify(orderCreated(0))),
      loops,
      maxInFlight,
      stages,
      check,
    };
  } finally {
    await nats.stop();
  }
}

export function reportEvents(result: EventBench): void {
  const { raw, backbone, stages, check } = result;
  console.log(
    `\nEvent backbone (issue 5): ${raw.count} order.created envelopes of ${result.envelopeBytes} bytes per target ` +
      `(after ${WARMUP} to warm up), ${result.loops} producer loops, ${result.maxInFlight} messages in flight per consumer`,
  );
  console.log("| target | msgs/s | p50 ms | p99 ms | seconds | bench process CPU (cores) |\n|---|---|---|---|---|---|");
  for (const r of [raw, backbone]) {
    console.log(`| ${r.target} | ${r.messagesPerSecond} | ${r.p50} | ${r.p99} | ${r.seconds} | ${r.processCpu} |`);
  }
  console.log(
    `backbone: all enqueued at ${stages.enqueued} s, last relay round began at ${stages.lastRelayRound} s, ` +
      `last consumer commit at ${stages.lastCommit} s; ${check.effects} effect rows, ${check.inbox} inbox rows, ` +
      `${check.unsent} unsent (warm-up included)`,
  );
  console.log(`ratio backbone / raw: ${(backbone.messagesPerSecond / raw.messagesPerSecond).toFixed(3)}`);
  const { fixedRate, drain } = result;
  console.log(
    `\nFixed rate (issue 15): ${fixedRate.offeredPerSecond} events/s offered for ${fixedRate.count / fixedRate.offeredPerSecond} s, ` +
      `each in its own producer transaction; producer commit → consumer commit`,
  );
  console.log("| target | msgs/s | p50 ms | p99 ms | seconds | bench process CPU (cores) |\n|---|---|---|---|---|---|");
  for (const r of [fixedRate]) {
    console.log(`| ${r.target} | ${r.messagesPerSecond} | ${r.p50} | ${r.p99} | ${r.seconds} | ${r.processCpu} |`);
  }
  console.log(
    `\nDrain (issue 15): ${drain.backbone.count} events from a pre-filled outbox, and raw JetStream with as many`,
  );
  console.log("| target | msgs/s | p50 ms | p99 ms | seconds | bench process CPU (cores) |\n|---|---|---|---|---|---|");
  for (const r of [drain.raw, drain.backbone]) {
    console.log(`| ${r.target} | ${r.messagesPerSecond} | ${r.p50} | ${r.p99} | ${r.seconds} | ${r.processCpu} |`);
  }
  console.log(`ratio drain / raw: ${(drain.backbone.messagesPerSecond / drain.raw.messagesPerSecond).toFixed(3)}`);
}
