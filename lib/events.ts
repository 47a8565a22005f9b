/**
 * Domain event envelopes and the catalogue of their schemas. Every event that leaves a service is an envelope
 * (id, type, version, occurredAt, source, correlation and causation ids, payload) whose payload is checked against
 * the schema registered for its type and version before it is published. Plain data and fastest-validator, no broker.
 */
import { randomUUID } from "node:crypto";
import Validator, { type ValidationError as FieldError, type ValidationSchema } from "fastest-validator";
import { invalidFields } from "./errors";

export interface EventEnvelope<P = unknown> {
  /** Unique per event; consumers and JetStream de-duplicate on it. */
  id: string;
  type: string;
  version: number;
  occurredAt: string;
  /** The service that produced it. */
  source: string;
  /** The request or saga this event belongs to. */
  correlationId: string;
  /** The event or command that caused this one, if any. */
  causationId: string | null;
  payload: P;
}

export interface EventSchema {
  type: string;
  version: number;
  payload: ValidationSchema;
}

const validator = new Validator({ useNewCustomCheckerFunction: true });

const checkEnvelope = validator.compile({
  id: { type: "uuid" },
  type: { type: "string", pattern: /^[a-z][a-z0-9]*(\.[a-z][a-zA-Z0-9]*)+$/ },
  version: { type: "number", integer: true, positive: true },
  occurredAt: { type: "string", pattern: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/ },
  source: { type: "string", min: 1, max: 64 },
  correlationId: { type: "string", min: 1, max: 128 },
  causationId: { type: "string", max: 128, nullable: true },
  payload: { type: "object" },
  $$strict: true,
});

/** Where the catalogue looks up a type it does not hold (the schema registry): every registered version of it. */
export type SchemaSource = (type: string) => Promise<EventSchema[]>;

/** A type and version the source did not have is not asked for again this soon (a producer in a loop of them). */
const MISS_TTL_MS = 2000;

export class EventCatalogue {
  private readonly checks = new Map<string, (payload: unknown) => true | FieldError[] | Promise<true | FieldError[]>>();
  private source?: SchemaSource;
  private readonly misses = new Map<string, number>();

  constructor(schemas: EventSchema[] = []) {
    for (const schema of schemas) this.register(schema);
  }

  /** Types and versions the catalogue does not hold are looked up in `source` before they are refused. */
  useSource(source: SchemaSource | undefined): void {
    this.source = source;
    this.misses.clear();
  }

  register(schema: EventSchema): void {
    this.checks.set(`${schema.type}@${schema.version}`, validator.compile({ ...schema.payload, $$root: false }));
  }

  has(type: string, version: number): boolean {
    return this.checks.has(`${type}@${version}`);
  }

  /** 422 with the offending fields (prefixed `payload.`) unless the envelope and its payload match the catalogue. */
  async validate(envelope: EventEnvelope): Promise<void> {
    const shape = await checkEnvelope({ ...envelope });
    if (shape !== true) throw invalidFields("Invalid event envelope", shape.map(toProblem));
    const key = `${envelope.type}@${envelope.version}`;
    if (!this.checks.has(key)) await this.lookUp(envelope.type, key);
    const check = this.checks.get(key);
    if (!check) {
      throw invalidFields(`Event type ${envelope.type} v${envelope.version} is not registered`, [
        {
          field: "type",
          message: "unregistered event type or version",
          type: "unregisteredEvent",
          actual: envelope.type,
        },
      ]);
    }
    const payload = await check(structuredClone(envelope.payload));
    if (payload !== true) {
      throw invalidFields(
        `Invalid ${envelope.type} payload`,
        payload.map((error) => toProblem({ ...error, field: `payload.${error.field}` })),
      );
    }
  }

  /** Adds the versions of `type` the source has; what the catalogue holds already (the built-in ones) stays. */
  private async lookUp(type: string, key: string): Promise<void> {
    if (!this.source || (this.misses.get(key) ?? 0) > Date.now()) return;
    try {
      for (const schema of await this.source(type)) {
        if (!this.has(schema.type, schema.version)) this.register(schema);
      }
    } catch {
      // The registry is unreachable: the event is refused as unregistered (fail closed), and asked about again later.
    }
    if (!this.checks.has(key)) this.misses.set(key, Date.now() + MISS_TTL_MS);
  }
}

function toProblem(error: FieldError) {
  return { field: error.field ?? "", message: error.message ?? error.type, type: error.type, actual: error.actual };
}

export function createEnvelope<P>(
  type: string,
  payload: P,
  context: { source: string; correlationId: string; causationId?: string | null; version?: number },
): EventEnvelope<P> {
  return {
    id: randomUUID(),
    type,
    version: context.version ?? 1,
    occurredAt: new Date().toISOString(),
    source: context.source,
    correlationId: context.correlationId,
    causationId: context.causationId ?? null,
    payload,
  };
}
