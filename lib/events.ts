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

export class EventCatalogue {
  private readonly checks = new Map<string, (payload: unknown) => true | FieldError[] | Promise<true | FieldError[]>>();

  constructor(schemas: EventSchema[] = []) {
    for (const schema of schemas) this.register(schema);
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
    const check = this.checks.get(`${envelope.type}@${envelope.version}`);
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
