/**
 * Dead letters, their failure groups and their replays, as the dead-letter queue answers them: to the console, the
 * REPL, tests and benches. The console reads these types as they are (its build compiles this folder, not services).
 */
import type { Lifecycle } from "./lifecycle";
import type { Page } from "../lib/paging";

/** An error as a message failed with it: what the consumer threw, in the form it travels and is stored in. */
export interface ErrorRecord {
  name: string;
  message: string;
  code: number;
  type: string;
  data: unknown;
}

export const DEAD_LETTER_STATUSES = ["PENDING", "REPLAYED", "RESOLVED", "DISCARDED"] as const;
export type DeadLetterStatus = (typeof DEAD_LETTER_STATUSES)[number];

/**
 * A dead letter waits PENDING; a replay makes it REPLAYED (and may be sent again); its message processed makes it
 * RESOLVED; failing again reopens it PENDING, even a resolved one whose message was sent again. A discarded one is
 * given up on for good: a later failure of its message opens a new entry.
 */
export const DEAD_LETTER_LIFECYCLE: Lifecycle<DeadLetterStatus> = {
  PENDING: ["PENDING", "REPLAYED", "RESOLVED", "DISCARDED"],
  REPLAYED: ["PENDING", "REPLAYED", "RESOLVED", "DISCARDED"],
  RESOLVED: ["PENDING", "DISCARDED"],
  DISCARDED: [],
};

export interface DeadLetterFailure {
  deadLetterId: string;
  attempts: number;
  error: ErrorRecord;
  failedAt: string;
}

export interface DeadLetter {
  id: string;
  channel: string;
  group: string;
  messageId: string | null;
  message: unknown;
  replayable: boolean;
  status: DeadLetterStatus;
  attempts: number;
  error: ErrorRecord;
  /** Every time the message was given up on: the first failure, then one per replay that failed again. */
  failures: DeadLetterFailure[];
  correlationId: string | null;
  replayCount: number;
  lastReplayedAt: string | null;
  lastReplayedBy: string | null;
  resolvedAt: string | null;
  discardedAt: string | null;
  discardedBy: string | null;
  discardReason: string | null;
  firstFailedAt: string;
  failedAt: string;
  /** The failure's fingerprint: channel, consumer group, error type and summary (migration 0004); its group's key. */
  fingerprint: string;
  /** The error's first field message or its message, ids and numbers replaced: what the group says. */
  errorSummary: string;
}

/** A letter's replay: waiting for its turn in an operation, sent, or skipped or cancelled before it was sent. */
export type ReplayState = "WAITING" | "SENT" | "SKIPPED" | "CANCELLED";
/** What became of a sent replay: still pending, resolved (processed), or failed again. */
export type ReplayOutcome = "PENDING" | "RESOLVED" | "FAILED";

/** One replay of a dead letter, alone or as a place in a replay operation: a row of the letter's lineage. */
export interface Replay {
  id: string;
  deadLetterId: string;
  operationId: string | null;
  state: ReplayState;
  /** Why it was skipped: the letter was resolved or discarded meanwhile, or never replayable. */
  detail: string | null;
  /** The letter's replay count this replay made (its message carries it in its JetStream id). */
  attempt: number | null;
  replayedBy: string | null;
  replayedAt: string | null;
  outcome: ReplayOutcome | null;
  /** The error it failed with again. */
  outcomeError: ErrorRecord | null;
  outcomeAt: string | null;
}

export interface DeadLetterFilter {
  status?: DeadLetterStatus;
  channel?: string;
  group?: string;
  errorType?: string;
  from?: Date;
  to?: Date;
  /** Text inside the message or the error. */
  search?: string;
  /** One group's failures (`DeadLetterGroup.fingerprint`). */
  fingerprint?: string;
  /** Messages about one order (its `order.id` or `orderId` in the payload). */
  orderId?: string;
}

/** A replay operation's selection as stored and answered (its dates as ISO strings). */
export type ReplaySelection = Omit<DeadLetterFilter, "status" | "from" | "to"> & {
  from?: string;
  to?: string;
  until: string;
};

/** A batch replay run by the server: `POST /api/dlq/replays`. */
export interface ReplayOperation {
  id: string;
  selection: ReplaySelection;
  status: "RUNNING" | "CANCELLED" | "DONE";
  total: number;
  ratePerSecond: number;
  startedBy: string;
  startedAt: string;
  cancelledBy: string | null;
  finishedAt: string | null;
  /** Its letters by state: sent ones have an outcome. */
  progress: Record<"waiting" | "sent" | "skipped" | "cancelled", number>;
  /** What became of the sent ones. */
  outcomes: Record<"pending" | "resolved" | "failed", number>;
}

/** Dead letters that failed the same way (one fingerprint): `GET /api/dlq/groups`. */
export interface DeadLetterGroup {
  fingerprint: string;
  channel: string;
  group: string;
  errorType: string;
  summary: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  /** The group's latest dead letter, and its error in full (the `data` names the fields and the action). */
  sampleId: string;
  sampleError: ErrorRecord;
  /** The orders its messages were about, up to 20. */
  orders: string[];
}

/** One row of `GET /api/dlq/stats`. */
export interface DeadLetterCount {
  channel: string;
  group: string;
  status: DeadLetterStatus;
  count: number;
}

export type DeadLetterPage = Page<DeadLetter>;
