/**
 * A Moleculer logger that ships every node's log records to the `logs` service in batches over the `log.batch`
 * channel, beside the Pino logger that writes them locally. Shipping never blocks or fails the code that logs: records
 * go into a bounded buffer, a timer publishes them, a failed publish keeps them for the next tick, and records that
 * do not fit are counted and reported with the next batch that goes out.
 */
import { Loggers, type ServiceBroker } from "moleculer";
import type { ShippedLogRecord } from "../contracts/logs";
import { MAX_MESSAGE_BYTES, channelsReady, ensureStream } from "./delivery";
import { createEnvelope } from "./events";
import { requestLogFields } from "./request-context";

type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace";

export interface LogShipperOptions {
  level: LogLevel;
  bufferLimit?: number;
  intervalMs?: number;
}

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace"];
/** Under the message limit, with room for the envelope. */
const BATCH_BYTES = MAX_MESSAGE_BYTES - 16 * 1024;

function describe(args: unknown[]): { message: string; fields: Record<string, unknown> | null } {
  const words: string[] = [];
  let fields: Record<string, unknown> | null = null;
  for (const arg of args) {
    if (arg instanceof Error) words.push(arg.stack ?? `${arg.name}: ${arg.message}`);
    else if (arg !== null && typeof arg === "object") fields = { ...(fields ?? {}), ...(arg as object) };
    else words.push(String(arg));
  }
  return { message: words.join(" "), fields };
}

type Factory = Parameters<InstanceType<typeof Loggers.Base>["init"]>[0];
type Bindings = Parameters<InstanceType<typeof Loggers.Base>["getLogHandler"]>[0];

export class LogShipper extends Loggers.Base<{ level?: LogLevel }> {
  private buffer: ShippedLogRecord[] = [];
  private dropped = 0;
  private shipping = false;
  private streamReady = false;
  private timer?: NodeJS.Timeout;
  private readonly bufferLimit: number;
  private readonly intervalMs: number;
  private shipperBroker?: ServiceBroker;

  constructor(options: LogShipperOptions) {
    super({ level: options.level });
    this.bufferLimit = options.bufferLimit ?? 10_000;
    this.intervalMs = options.intervalMs ?? 1000;
  }

  override init(loggerFactory: Factory): void {
    super.init(loggerFactory);
    this.shipperBroker = loggerFactory.broker;
    this.timer = setInterval(() => void this.ship(), this.intervalMs);
    this.timer.unref();
  }

  override stop(): void {
    clearInterval(this.timer);
    void this.ship();
  }

  override getLogHandler(bindings: Bindings) {
    // The console trace exporter draws spans through the "tracer" logger: spans go to trace exporters, and shipping
    // the drawing would trace the shipping, which would draw more.
    if (bindings?.mod === "tracer") return null;
    const level = this.getLogLevel(bindings?.mod);
    if (!level) return null;
    const levelIndex = LEVELS.indexOf(level);
    return (type: LogLevel, args: unknown[]) => {
      if (LEVELS.indexOf(type) > levelIndex) return;
      if (this.buffer.length >= this.bufferLimit) {
        this.dropped += 1;
        return;
      }
      const { message, fields } = describe(args);
      const record: ShippedLogRecord = {
        time: new Date().toISOString(),
        level: type,
        nodeId: bindings.nodeID,
        module: (bindings as { svc?: string }).svc ?? bindings.mod,
        // The request being handled, or the one a record names (the gateway's access line, written after it).
        requestId: requestLogFields().requestId ?? (typeof fields?.requestId === "string" ? fields.requestId : null),
        message: message.slice(0, 8000),
        fields,
      };
      this.buffer.push(record);
    };
  }

  /** Publishes what the buffer holds, a message at a time; keeps what could not go out. */
  async ship(): Promise<void> {
    const broker = this.shipperBroker;
    if (this.shipping || !broker || !channelsReady(broker) || (this.buffer.length === 0 && this.dropped === 0)) return;
    this.shipping = true;
    try {
      if (!this.streamReady) {
        await ensureStream(broker.channelAdapter, "log.batch");
        this.streamReady = true;
      }
      while (this.buffer.length > 0 || this.dropped > 0) {
        let bytes = 0;
        let count = 0;
        while (count < this.buffer.length && bytes < BATCH_BYTES) {
          bytes += Buffer.byteLength(JSON.stringify(this.buffer[count]));
          count += 1;
        }
        const batch = createEnvelope(
          "log.batch",
          { nodeId: broker.nodeID, records: this.buffer.slice(0, count), dropped: this.dropped },
          { source: "logs-shipper", correlationId: broker.nodeID },
        );
        await broker.sendToChannel(batch.type, batch, { headers: { "Nats-Msg-Id": batch.id } });
        this.buffer.splice(0, count);
        this.dropped = 0;
      }
    } catch {
      // The channel is not there yet, or NATS is down: the records wait for the next tick.
    } finally {
      this.shipping = false;
    }
  }
}
