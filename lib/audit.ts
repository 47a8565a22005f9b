/**
 * The audit trail's rules as plain functions: what a record holds, secrets redacted, and the hash chain that makes
 * it tamper-evident. Each record's hash is the SHA-256 of the previous record's hash and the record's canonical JSON
 * (keys sorted), so changing, removing or reordering any record breaks every link after it.
 *
 * A chain alone can be rewritten consistently by whoever may write the table (the database owner recomputes every hash
 * after the record they changed). So each record also carries an anchor: the HMAC-SHA256 of its hash under
 * `AUDIT_ANCHOR_KEY`, a key the audit nodes hold and the database never sees. Whoever rewrites a record without the
 * key cannot give it, or any record after it, a valid anchor.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { AuditContent, ChainBreak } from "../contracts/audit";

export const GENESIS_HASH = "0".repeat(64);

/** What an audited action's handler tells the audit middleware through `ctx.locals`. */
export interface AuditLocals {
  /** The entity as it was before the change. */
  auditBefore?: unknown;
  /** The record went out with the change, through the service's outbox (`enqueueAudit`): nothing left to publish. */
  auditWritten?: boolean;
}

const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|^key$|privateKey/i;

/** A copy of `value` with the values of secret-looking keys replaced, at any depth. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value instanceof Date) return value.toISOString();
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [key, SECRET_KEY.test(key) ? "[redacted]" : redact(inner)]),
  );
}

/** JSON with object keys sorted at every depth: the same content always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  const entries = Object.entries(value)
    .filter(([, inner]) => inner !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonicalJson(inner)}`).join(",")}}`;
}

export function chainHash(previousHash: string, content: AuditContent): string {
  return createHash("sha256").update(previousHash).update(canonicalJson(content)).digest("hex");
}

/** A record's anchor: its hash signed with the anchor key. */
export function anchorOf(key: string, hash: string): string {
  return createHmac("sha256", key).update(hash).digest("hex");
}

function anchorMatches(key: string, hash: string, anchor: string | null): boolean {
  if (typeof anchor !== "string" || !/^[0-9a-f]{64}$/.test(anchor)) return false;
  return timingSafeEqual(Buffer.from(anchorOf(key, hash), "hex"), Buffer.from(anchor, "hex"));
}

/**
 * The chain's head as the audit service keeps it outside the database (a JetStream key-value bucket, where the channels
 * run on NATS): the newest seq and its hash, signed with the anchor key. A verify that finds fewer records than the
 * checkpoint names reports the newest ones removed, also after every audit node restarted.
 */
export interface Checkpoint {
  seq: number;
  hash: string;
  signature: string;
}

export function signCheckpoint(key: string, seq: number, hash: string): Checkpoint {
  return { seq, hash, signature: anchorOf(key, `checkpoint:${seq}:${hash}`) };
}

/** Whether `value` is a checkpoint signed with `key` (anything else in the bucket is ignored). */
export function isSignedCheckpoint(key: string, value: unknown): value is Checkpoint {
  const checkpoint = value as Partial<Checkpoint> | null;
  if (typeof checkpoint?.seq !== "number" || typeof checkpoint.hash !== "string") return false;
  return anchorMatches(key, `checkpoint:${checkpoint.seq}:${checkpoint.hash}`, checkpoint.signature ?? null);
}

/** The key-value bucket that keeps a namespace's checkpoint. */
export function checkpointBucket(namespace: string): string {
  return `audit-head-${namespace.replace(/[^A-Za-z0-9_-]/g, "_")}`;
}

export interface ChainLink {
  seq: number;
  content: AuditContent;
  prevHash: string;
  hash: string;
  anchor: string | null;
}

/** Where and how the trail breaks, in a sentence for operators (REPL, logs). */
export function describeBreak(broken: ChainBreak): string {
  if (broken.reason === "record missing") return `record ${broken.id} is missing: the audit service gave up on it`;
  if (broken.reason === "records removed") return `the records from ${broken.seq} on were removed`;
  return `record ${broken.seq} (${broken.id}): ${broken.reason}`;
}

/**
 * Walks links in order from `previousHash` (the hash before the first of them) and returns the first broken one,
 * or the hash to continue from. A link whose anchor is not its hash signed with `anchorKey` was written or rewritten
 * by someone without the key.
 */
export function verifyLinks(
  previousHash: string,
  links: ChainLink[],
  anchorKey: string,
): { broken: ChainBreak } | { lastHash: string } {
  let expectedPrevious = previousHash;
  for (const link of links) {
    if (link.prevHash !== expectedPrevious)
      return { broken: { seq: link.seq, id: link.content.id, reason: "link broken" } };
    if (chainHash(link.prevHash, link.content) !== link.hash) {
      return { broken: { seq: link.seq, id: link.content.id, reason: "content changed" } };
    }
    if (!anchorMatches(anchorKey, link.hash, link.anchor)) {
      return { broken: { seq: link.seq, id: link.content.id, reason: "not anchored" } };
    }
    expectedPrevious = link.hash;
  }
  return { lastHash: expectedPrevious };
}
