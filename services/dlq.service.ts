/**
 * dlq: the dead-letter queue. Every consumer group that gives up on a message publishes a `message.deadLettered`
 * record (mixins/consumer.mixin.ts); this service keeps them in its own database where operators list, search and
 * inspect them, replay them to their original channel once the cause is fixed, or discard them. A replayed message
 * that is then processed reports `message.recovered`, which resolves its entry; one that fails again reopens it.
 * Every replay is kept with what became of it (its lineage). Many letters are replayed by a replay operation: a
 * selection frozen when it starts, sent by the server at a bounded rate, cancellable, kept with a result per letter.
 * DLQ depth (pending entries) is exported per channel as the `aicunet.dlq.depth` gauge.
 *
 * Its parts: reading the queue (mixins/dlq-queries.mixin.ts), storing dead letters and outcomes
 * (mixins/dlq-consumer.mixin.ts), replay operations (mixins/dlq-replay-operations.mixin.ts), sending letters back
 * (mixins/dlq-replay-runner.mixin.ts) and the depth gauge (mixins/dlq-depth.mixin.ts); one letter's actions are here.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { CallerMeta } from "../contracts/caller";
import { DEAD_LETTER_LIFECYCLE, type DeadLetter, type Replay } from "../contracts/dead-letters";
import { movesInto } from "../contracts/lifecycle";
import { toDeadLetter, toReplay, type DeadLetterRow, type ReplayRow } from "../lib/dead-letter-rows";
import { ConflictError, NotFoundError } from "../lib/errors";
import { paramsSchema, type ParamsOf } from "../lib/params";
import { actorOf } from "../lib/permissions";
import dlqMigrations from "../migrations/dlq";
import { dbMixin, type DbMethods, type DbServiceThis, type DbSettings } from "../mixins/db.mixin";
import { dlqConsumerMixin } from "../mixins/dlq-consumer.mixin";
import { dlqDepthMixin, type DlqDepthMethods } from "../mixins/dlq-depth.mixin";
import { dlqQueriesMixin } from "../mixins/dlq-queries.mixin";
import { dlqReplayOperationsMixin } from "../mixins/dlq-replay-operations.mixin";
import { dlqReplayRunnerMixin, type DlqReplayRunnerMethods } from "../mixins/dlq-replay-runner.mixin";

interface DlqMethods {
  findEntry(id: string): Promise<DeadLetterRow>;
}

type DlqThis = Service<DbSettings> & DbServiceThis & DbMethods & DlqDepthMethods & DlqReplayRunnerMethods & DlqMethods;

const idParams = paramsSchema({ id: { type: "uuid" }, $$strict: true });
const discardParams = paramsSchema({
  id: { type: "uuid" },
  // Why it is given up on, for whoever finds it later: required.
  reason: { type: "string", trim: true, min: 1, max: 500 },
  $$strict: true,
});

const DlqService: ServiceSchema<DbSettings, DlqMethods, object, DlqThis> = {
  name: "dlq",
  /**
   * Merged the last first: the actions of the queries (`GET /groups`, `GET /stats`), then those of the replay
   * operations (`GET /replays`, ...), are declared before this schema's (`GET /:id`). `started` runs after the
   * mixins' own, once the database is connected.
   */
  mixins: [
    dbMixin({
      service: "dlq",
      migrations: dlqMigrations,
    }),
    dlqConsumerMixin(),
    dlqDepthMixin(),
    dlqReplayRunnerMixin(),
    dlqReplayOperationsMixin(),
    dlqQueriesMixin(),
  ],

  async started(this: DlqThis) {
    await this.refreshDepth();
    // Operations left running by a stopped node (this one before a restart, or another) go on from where they were.
    this.runReplays();
  },

  actions: {
    /** One dead letter: the message, the last error and every failure, and its replays with their outcomes. */
    get: {
      rest: "GET /:id",
      permissions: ["dlq:read"],
      params: idParams,
      async handler(
        this: DlqThis,
        ctx: Context<ParamsOf<typeof idParams>>,
      ): Promise<DeadLetter & { replays: Replay[] }> {
        const entry = toDeadLetter(await this.findEntry(ctx.params.id));
        const replays = await this.rows<ReplayRow>(
          "SELECT * FROM replays WHERE dead_letter_id = $1 ORDER BY replayed_at NULLS LAST, id",
          [ctx.params.id],
        );
        return { ...entry, replays: replays.map(toReplay) };
      },
    },

    /**
     * Sends the message back to its original channel (the other consumer groups of that channel processed it
     * already, so their inboxes drop it). 409 for an entry that is resolved, discarded or not replayable (it was
     * never a valid envelope). `dlq:replay`.
     */
    replay: {
      audit: { entity: "deadLetter" },
      rest: "POST /:id/replay",
      permissions: ["dlq:replay"],
      params: idParams,
      async handler(this: DlqThis, ctx: Context<ParamsOf<typeof idParams>, CallerMeta>): Promise<DeadLetter> {
        const actor = actorOf(ctx.meta.caller);
        const row = await this.sequelize.transaction((transaction) =>
          this.replayLetter(ctx.params.id, actor, transaction),
        );
        this.logger.info(`Dead letter ${row.id} replayed to ${row.channel} by ${actor}`);
        await this.refreshDepth();
        return toDeadLetter(row);
      },
    },

    /** Discards an entry (kept, marked DISCARDED with who, when and why; in the audit trail). `dlq:discard`. */
    discard: {
      audit: { entity: "deadLetter" },
      rest: "DELETE /:id",
      permissions: ["dlq:discard"],
      params: discardParams,
      async handler(this: DlqThis, ctx: Context<ParamsOf<typeof discardParams>, CallerMeta>): Promise<DeadLetter> {
        const actor = actorOf(ctx.meta.caller);
        const [row] = await this.rows<DeadLetterRow>(
          `UPDATE dead_letters SET status = 'DISCARDED', discarded_at = now(), discarded_by = $2, discard_reason = $3,
             updated_at = now()
           WHERE id = $1 AND status = ANY($4) RETURNING *`,
          [ctx.params.id, actor, ctx.params.reason, movesInto(DEAD_LETTER_LIFECYCLE, "DISCARDED")],
        );
        if (!row) {
          const existing = await this.findEntry(ctx.params.id);
          throw new ConflictError(`Dead letter ${existing.id} is already discarded`, "CONFLICT", { id: existing.id });
        }
        this.logger.warn(`Dead letter ${row.id} (${row.channel}, ${row.consumer_group}) discarded by ${actor}`);
        await this.refreshDepth();
        return toDeadLetter(row);
      },
    },
  },

  methods: {
    async findEntry(this: DlqThis, id: string) {
      const [row] = await this.rows<DeadLetterRow>("SELECT * FROM dead_letters WHERE id = $1", [id]);
      if (!row) throw new NotFoundError("Dead letter", id);
      return row;
    },
  },
};

export default DlqService;
