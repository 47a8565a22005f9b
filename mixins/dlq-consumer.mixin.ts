/**
 * The dlq's consumer group: stores every `message.deadLettered` record as a dead letter (or reopens the entry of a
 * message that failed again after a replay, making that the replay's outcome), and resolves an entry and its replay's
 * outcome on `message.recovered`.
 */
import type { Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import { DEAD_LETTER_LIFECYCLE, type DeadLetterFailure } from "../contracts/dead-letters";
import { movesInto } from "../contracts/lifecycle";
import type { EventEnvelope } from "../lib/events";
import { storableJson, storableText } from "../lib/storable";
import { consumerMixin, type UnprocessableMessage } from "./consumer.mixin";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";
import type { DlqDepthMethods } from "./dlq-depth.mixin";
import type { DeadLetteredPayload } from "../lib/delivery";

interface RecoveredPayload {
  deadLetterId: string;
  channel: string;
  group: string;
  messageId: string;
}

type DlqConsumerThis = Service<DbSettings> & DbServiceThis & DbMethods & DlqDepthMethods;

export function dlqConsumerMixin(): Partial<ServiceSchema> {
  return consumerMixin<DlqConsumerThis>({
    group: "dlq",
    /**
     * A dead letter (or recovery notice) this service cannot store as a record is stored as the text that arrived,
     * not replayable: a dead letter about it would come back here and fail the same way, without end.
     */
    async keepUnprocessable(message: UnprocessableMessage) {
      const failure: DeadLetterFailure = {
        deadLetterId: message.id,
        attempts: message.attempts,
        error: message.error,
        failedAt: new Date().toISOString(),
      };
      await this.rows(
        `INSERT INTO dead_letters (id, channel, consumer_group, message_id, message, replayable, attempts, error,
           error_type, failures, correlation_id, first_failed_at, failed_at)
         VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8, jsonb_build_array($9::jsonb), $10, now(), now())
         ON CONFLICT DO NOTHING`,
        [
          message.id,
          message.channel,
          message.group,
          // From the message itself, which may be anything: made storable so keeping it cannot fail on them.
          message.messageId === null ? null : storableText(message.messageId),
          storableJson({ text: message.text, bytes: message.bytes }),
          message.attempts,
          storableJson(message.error),
          storableText(message.error.type).slice(0, 100),
          storableJson(failure),
          message.correlationId === null ? null : storableText(message.correlationId),
        ],
      );
      await this.refreshDepth();
    },
    handlers: {
      /** Stores a dead letter, or reopens the entry of a message that failed again after a replay. */
      async "message.deadLettered"(envelope: EventEnvelope, transaction: Transaction) {
        const dead = envelope.payload as DeadLetteredPayload;
        const failure: DeadLetterFailure = {
          deadLetterId: envelope.id,
          attempts: dead.attempts,
          error: dead.error,
          failedAt: dead.failedAt,
        };
        // A message that failed again after a replay: its entry reopens, and that replay's outcome is this error.
        await this.rows(
          `WITH stored AS (
             INSERT INTO dead_letters (id, channel, consumer_group, message_id, message, replayable, attempts, error,
               error_type, failures, correlation_id, first_failed_at, failed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, jsonb_build_array($10::jsonb), $11, $12, $12)
             ON CONFLICT (consumer_group, message_id) WHERE message_id IS NOT NULL AND status <> 'DISCARDED'
             DO UPDATE SET status = 'PENDING', attempts = dead_letters.attempts + EXCLUDED.attempts,
               error = EXCLUDED.error, error_type = EXCLUDED.error_type, message = EXCLUDED.message,
               failures = dead_letters.failures || EXCLUDED.failures, failed_at = EXCLUDED.failed_at,
               updated_at = now()
             RETURNING id)
           UPDATE replays SET outcome = 'FAILED', outcome_error = $8, outcome_at = now()
           WHERE outcome = 'PENDING' AND dead_letter_id IN (SELECT id FROM stored)`,
          [
            envelope.id,
            dead.channel,
            dead.group,
            dead.messageId,
            storableJson(dead.message),
            dead.replayable,
            dead.attempts,
            storableJson(dead.error),
            dead.error.type,
            storableJson(failure),
            envelope.correlationId,
            dead.failedAt,
          ],
          { transaction },
        );
        transaction.afterCommit(() => this.refreshDepth());
      },

      /**
       * A replayed message was processed by its group: its entry (and any other for it in that group) is resolved,
       * and so is the outcome of its replay.
       */
      async "message.recovered"(envelope: EventEnvelope, transaction: Transaction) {
        const recovered = envelope.payload as RecoveredPayload;
        await this.rows(
          `WITH resolved AS (
             UPDATE dead_letters SET status = 'RESOLVED', resolved_at = now(), updated_at = now()
             WHERE consumer_group = $1 AND message_id = $2 AND status = ANY($3) RETURNING id)
           UPDATE replays SET outcome = 'RESOLVED', outcome_at = now()
           WHERE outcome = 'PENDING' AND dead_letter_id IN (SELECT id FROM resolved)`,
          [recovered.group, recovered.messageId, movesInto(DEAD_LETTER_LIFECYCLE, "RESOLVED")],
          { transaction },
        );
        transaction.afterCommit(() => this.refreshDepth());
      },
    },
  });
}
