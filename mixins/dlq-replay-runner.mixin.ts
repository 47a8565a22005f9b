/**
 * Sending dead letters back to their original channel: one letter (`replayLetter`, for the `replay` action and for
 * replay operations), and the replay runner, which sends the letters of running replay operations at their rate, on
 * whichever dlq node takes the turn, and goes on after a restart.
 */
import { randomUUID } from "node:crypto";
import type { Service, ServiceSchema } from "moleculer";
import type { Transaction } from "sequelize";
import type { DeadLetterRow } from "../lib/dead-letter-rows";
import { REPLAY_HEADER, channelsReady } from "../lib/delivery";
import { ConflictError, NotFoundError } from "../lib/errors";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";
import type { DlqDepthMethods } from "./dlq-depth.mixin";
import { DEAD_LETTER_LIFECYCLE } from "../contracts/dead-letters";
import { canMove } from "../contracts/lifecycle";

/** How often a dlq node looks for replay operations due, when none of its own is (another node's, or after a restart). */
const REPLAY_IDLE_POLL_MS = 2000;

export interface DlqReplayRunnerMethods {
  replayLetter(id: string, actor: string, transaction: Transaction, replayId?: string): Promise<DeadLetterRow>;
  replayNextDue(): Promise<boolean>;
  runReplays(): void;
}

interface ReplayRunnerState {
  /** The replay runner's next turn, and the turn running now (awaited when the service stops). */
  replayTimer?: NodeJS.Timeout;
  replayTurn?: Promise<void>;
  replayStopped: boolean;
}

type ReplayRunnerThis = Service<DbSettings> &
  DbServiceThis &
  DbMethods &
  DlqDepthMethods &
  DlqReplayRunnerMethods &
  ReplayRunnerState;

export function dlqReplayRunnerMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DlqReplayRunnerMethods, ReplayRunnerState, ReplayRunnerThis>> = {
    created(this: ReplayRunnerThis) {
      this.replayStopped = false;
    },

    async stopped(this: ReplayRunnerThis) {
      this.replayStopped = true;
      clearTimeout(this.replayTimer);
      await this.replayTurn;
    },

    methods: {
      /**
       * Marks the entry REPLAYED, records the replay (as `replayId`, a waiting place in an operation, or a new row) and
       * publishes the message, in the caller's transaction: a publish that fails rolls the mark back, and a
       * `message.recovered` that arrives quickly waits for the mark instead of being overwritten by it.
       */
      async replayLetter(
        this: ReplayRunnerThis,
        id: string,
        actor: string,
        transaction: Transaction,
        replayId?: string,
      ) {
        const [entry] = await this.rows<DeadLetterRow>("SELECT * FROM dead_letters WHERE id = $1 FOR UPDATE", [id], {
          transaction,
        });
        if (!entry) throw new NotFoundError("Dead letter", id);
        if (!entry.replayable) {
          throw new ConflictError("This message was never a valid envelope; it cannot be replayed", "CONFLICT", {
            id,
            reason: "notReplayable",
          });
        }
        if (!canMove(DEAD_LETTER_LIFECYCLE, entry.status, "REPLAYED")) {
          throw new ConflictError(`Dead letter ${id} is ${entry.status.toLowerCase()}`, "CONFLICT", {
            id,
            status: entry.status,
          });
        }
        const [updated] = await this.rows<DeadLetterRow>(
          `UPDATE dead_letters SET status = 'REPLAYED', replay_count = replay_count + 1, last_replayed_at = now(),
             last_replayed_by = $2, updated_at = now() WHERE id = $1 RETURNING *`,
          [id, actor],
          { transaction },
        );
        await this.rows(
          `INSERT INTO replays (id, dead_letter_id, state, attempt, replayed_by, replayed_at, outcome)
           VALUES ($2, $1, 'SENT', $3, $4, now(), 'PENDING')
           ON CONFLICT (id) DO UPDATE SET state = 'SENT', attempt = $3, replayed_by = $4, replayed_at = now(),
             outcome = 'PENDING'`,
          [id, replayId ?? randomUUID(), updated.replay_count, actor],
          { transaction },
        );
        await this.broker.sendToChannel(entry.channel, entry.message, {
          // A new JetStream message id, or the duplicate window would drop the replay as a copy of the original.
          headers: { [REPLAY_HEADER]: id, "Nats-Msg-Id": `${entry.message_id}:replay:${id}:${updated.replay_count}` },
        });
        return updated;
      },

      /**
       * Sends the next letter of one running operation whose turn has come (its rate sets the next turn), or ends an
       * operation with none left. The operation's row is held meanwhile, so two dlq nodes never take the same turn and
       * a cancel waits for the letter being sent. False when no operation was due.
       */
      async replayNextDue(this: ReplayRunnerThis) {
        return this.sequelize.transaction(async (transaction) => {
          const [operation] = await this.rows<{ id: string; started_by: string }>(
            `SELECT id, started_by FROM replay_operations WHERE status = 'RUNNING' AND next_due_at <= now()
             ORDER BY next_due_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
            [],
            { transaction },
          );
          if (!operation) return false;
          const [turn] = await this.rows<{ id: string; dead_letter_id: string }>(
            "SELECT id, dead_letter_id FROM replays WHERE operation_id = $1 AND state = 'WAITING' ORDER BY position LIMIT 1",
            [operation.id],
            { transaction },
          );
          if (turn) {
            try {
              await this.replayLetter(turn.dead_letter_id, operation.started_by, transaction, turn.id);
            } catch (err) {
              // The letter changed since the selection was frozen: resolved, discarded, or gone.
              if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
              await this.rows(
                "UPDATE replays SET state = 'SKIPPED', detail = $2 WHERE id = $1",
                [turn.id, (err as Error).message],
                { transaction },
              );
            }
          }
          await this.rows(
            `UPDATE replay_operations SET next_due_at = now() + interval '1 second' / rate_per_second,
               status = CASE WHEN waiting.any THEN status ELSE 'DONE' END,
               finished_at = CASE WHEN waiting.any THEN NULL ELSE now() END
             FROM (SELECT EXISTS (SELECT 1 FROM replays WHERE operation_id = $1 AND state = 'WAITING') AS any) AS waiting
             WHERE id = $1`,
            [operation.id],
            { transaction },
          );
          if (turn) transaction.afterCommit(() => this.refreshDepth());
          return true;
        });
      },

      /**
       * The replay runner: takes every turn that is due, then sleeps until the next one (or polls, for operations
       * started elsewhere). Called again when an operation starts here, to begin at once. Like every publisher, it
       * waits for the node's consumers to have subscribed: a letter sent before (an operation resumed at start) would
       * reach no one on the in-memory channels, and its outcome would stay pending.
       */
      runReplays(this: ReplayRunnerThis) {
        clearTimeout(this.replayTimer);
        if (this.replayStopped) return;
        const turn = async () => {
          let delayMs = REPLAY_IDLE_POLL_MS;
          try {
            while (!this.replayStopped && channelsReady(this.broker) && (await this.replayNextDue()));
            const [next] = await this.rows<{ in_ms: number | null }>(
              `SELECT (extract(epoch FROM min(next_due_at) - now()) * 1000)::int AS in_ms
               FROM replay_operations WHERE status = 'RUNNING'`,
              [],
            );
            if (next.in_ms !== null) delayMs = Math.min(Math.max(next.in_ms, 5), REPLAY_IDLE_POLL_MS);
          } catch (err) {
            this.logger.warn(`Replay operations: ${(err as Error).message}; trying again`);
          }
          clearTimeout(this.replayTimer);
          if (!this.replayStopped) this.replayTimer = setTimeout(() => this.runReplays(), delayMs);
        };
        // One turn at a time: a wake-up during a turn runs after it.
        this.replayTurn = (this.replayTurn ?? Promise.resolve()).then(turn);
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
