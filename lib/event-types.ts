/**
 * The catalogue of every event that travels through the durable channels, by producer. Producers validate what they
 * enqueue against it and consumers validate what they receive, so a payload that breaks its schema is refused at the
 * source and parked (never half-processed) at the sink. The audit service registers it in the schema registry at
 * start, where each new version must be compatible with the one before (lib/schema-compat.ts).
 */
import type { ValidationRule } from "fastest-validator";
import { EventCatalogue, type EventSchema } from "./events";
import { ORDER_STATUSES } from "../contracts/orders";

const money: ValidationRule = {
  type: "object",
  props: {
    amount: { type: "number", integer: true, min: 0 },
    // Patterns as strings: the catalogue is registered as JSON in the schema registry.
    currency: { type: "string", pattern: "^[A-Z]{3}$" },
  },
};

const errorRecord: ValidationRule = {
  type: "object",
  props: {
    name: { type: "string" },
    message: { type: "string" },
    code: { type: "number", integer: true },
    type: { type: "string" },
    data: { type: "any", optional: true, nullable: true },
  },
};

/** orders */
const ORDER_EVENTS: EventSchema[] = [
  {
    type: "order.created",
    version: 1,
    payload: {
      order: {
        type: "object",
        props: {
          id: { type: "uuid" },
          customerId: { type: "uuid" },
          status: { type: "equal", value: "PENDING" },
          total: money,
          paymentMethod: { type: "string" },
          lines: { type: "array", min: 1 },
        },
      },
      $$strict: true,
    },
  },
  {
    type: "order.statusChanged",
    version: 1,
    payload: {
      order: {
        type: "object",
        props: {
          id: { type: "uuid" },
          customerId: { type: "uuid" },
          previousStatus: { type: "enum", values: [...ORDER_STATUSES] },
          status: { type: "enum", values: [...ORDER_STATUSES] },
          reason: { type: "string", nullable: true },
          version: { type: "number", integer: true, positive: true },
        },
      },
      $$strict: true,
    },
  },
];

/** products */
const PRODUCT_EVENTS: EventSchema[] = [
  {
    type: "product.stockChanged",
    version: 1,
    payload: {
      product: {
        type: "object",
        props: {
          id: { type: "uuid" },
          sku: { type: "string" },
          name: { type: "string" },
          stock: { type: "number", integer: true, min: 0 },
        },
      },
      $$strict: true,
    },
  },
];

/** exec: a rule's action could not be carried out (the event is in the dead-letter queue too). */
const EXEC_EVENTS: EventSchema[] = [
  {
    type: "exec.failed",
    version: 1,
    payload: {
      event: { type: "object", props: { id: { type: "string" }, type: { type: "string" } } },
      attempts: { type: "number", integer: true, min: 1 },
      error: errorRecord,
      $$strict: true,
    },
  },
];

/** sagas: the engine's command to itself, "run the action at this cursor" (after a delay, for a retry). */
const SAGA_EVENTS: EventSchema[] = [
  {
    type: "saga.stepDue",
    version: 1,
    payload: {
      sagaId: { type: "uuid" },
      cursor: {
        type: "object",
        strict: true,
        props: {
          phase: { type: "enum", values: ["forward", "compensate", "finish"] },
          step: { type: "number", integer: true, min: 0 },
          attempt: { type: "number", integer: true, min: 1 },
          finish: { type: "enum", values: ["completed", "compensated"], optional: true },
          waits: { type: "number", integer: true, min: 0, optional: true },
        },
      },
      /** Set on the message an operator replays from the dead-letter queue: resume the parked saga. */
      resume: { type: "boolean", optional: true },
      $$strict: true,
    },
  },
];

/** Every node (middlewares/audit.middleware.ts): a successful call of an action that declares `audit`. */
const AUDIT_EVENTS: EventSchema[] = [
  {
    type: "audit.recorded",
    version: 1,
    payload: {
      id: { type: "uuid" },
      kind: { type: "equal", value: "action" },
      name: { type: "string", min: 1, max: 200 },
      actor: { type: "object", props: { type: { type: "string" }, id: { type: "string", nullable: true } } },
      entity: {
        type: "object",
        props: { type: { type: "string", nullable: true }, id: { type: "string", nullable: true } },
      },
      requestId: { type: "string", nullable: true },
      nodeId: { type: "string", nullable: true },
      occurredAt: { type: "string" },
      change: { type: "any" },
      $$strict: true,
    },
  },
];

const logRecord: ValidationRule = {
  type: "object",
  props: {
    time: { type: "string" },
    level: { type: "enum", values: ["fatal", "error", "warn", "info", "debug", "trace"] },
    nodeId: { type: "string" },
    module: { type: "string" },
    requestId: { type: "string", nullable: true },
    message: { type: "string" },
    fields: { type: "object", nullable: true },
  },
};

/** Every node's log shipper (lib/log-shipper.ts), and the logs service's error records for the event bus. */
const LOG_EVENTS: EventSchema[] = [
  {
    type: "log.batch",
    version: 1,
    payload: {
      nodeId: { type: "string" },
      records: { type: "array", items: logRecord },
      dropped: { type: "number", integer: true, min: 0 },
      $$strict: true,
    },
  },
  { type: "log.error", version: 1, payload: { record: logRecord, $$strict: true } },
];

/** Every consumer (through mixins/consumer.mixin.ts): a message it gave up on, and a replayed one that then passed. */
const DELIVERY_EVENTS: EventSchema[] = [
  {
    type: "message.deadLettered",
    version: 1,
    payload: {
      channel: { type: "string", min: 1 },
      group: { type: "string", min: 1 },
      messageId: { type: "string", nullable: true },
      message: { type: "any" },
      replayable: { type: "boolean" },
      attempts: { type: "number", integer: true, min: 1 },
      error: errorRecord,
      failedAt: { type: "string" },
      $$strict: true,
    },
  },
  {
    type: "message.recovered",
    version: 1,
    payload: {
      deadLetterId: { type: "uuid" },
      channel: { type: "string" },
      group: { type: "string" },
      messageId: { type: "string" },
      $$strict: true,
    },
  },
];

export const EVENT_SCHEMAS: readonly EventSchema[] = [
  ...ORDER_EVENTS,
  ...PRODUCT_EVENTS,
  ...EXEC_EVENTS,
  ...SAGA_EVENTS,
  ...AUDIT_EVENTS,
  ...LOG_EVENTS,
  ...DELIVERY_EVENTS,
];

const catalogues = new WeakMap<object, EventCatalogue>();

/**
 * The catalogue of one node (keyed by its broker): the built-in schemas, and what its schema source (bin/node.ts) adds.
 * One per node, so nodes in one process (tests, benches) each ask their own cluster's registry.
 */
export function eventCatalogueOf(broker: object): EventCatalogue {
  let catalogue = catalogues.get(broker);
  if (!catalogue) {
    catalogue = new EventCatalogue([...EVENT_SCHEMAS]);
    catalogues.set(broker, catalogue);
  }
  return catalogue;
}

/** Domain events (what exec rules can react to), as opposed to the delivery machinery's own messages. */
export const DOMAIN_EVENT_TYPES: readonly string[] = [
  ...new Set([...ORDER_EVENTS, ...PRODUCT_EVENTS].map((schema) => schema.type)),
];
