/**
 * `GET /api/audit/verify` re-walks the chain and names the first broken link: a record changed, a link broken, a record
 * whose anchor (its hash signed with `AUDIT_ANCHOR_KEY`, which the database never sees) is wrong, so someone without
 * the key wrote or rewrote it, newer records removed, or a record the audit group gave up on and dead-lettered. Newer
 * records removed show against the head this node has seen and the signed checkpoint, kept in a JetStream key-value
 * bucket when the channels run on NATS.
 */
import type { Service, ServiceSchema } from "moleculer";
import type { KV, KvEntry } from "nats";
import type { ChainVerdict } from "../contracts/audit";
import {
  GENESIS_HASH,
  checkpointBucket,
  isSignedCheckpoint,
  signCheckpoint,
  type Checkpoint,
  verifyLinks,
} from "../lib/audit";
import { contentOf, type AuditRow } from "../lib/audit-rows";
import { DependencyUnavailableError } from "../lib/errors";
import type { DbMethods, DbServiceThis, DbSettings } from "./db.mixin";

const VERIFY_BATCH = 1000;

/** What the chain's writer and verifier keep on the service. */
export interface AuditState {
  /** AUDIT_ANCHOR_KEY, or the generated development key; set before the consumers subscribe. */
  anchorKey: string;
  /**
   * The newest seq this node has appended or verified. The anchors cannot show the newest records removed (what is
   * left is still signed), so verify compares the head with what this node has seen and with the checkpoint.
   */
  headSeq: number;
  /** Where the signed checkpoint is kept, when the channels run on NATS: a JetStream key-value bucket. */
  checkpoints?: Promise<KV>;
  checkpointTimer?: NodeJS.Timeout;
}

/** How long after an append the checkpoint follows: appends in between share one update. */
const CHECKPOINT_DELAY_MS = 500;
const CHECKPOINT_KEY = "head";

/** What a key-value entry holds, as JSON; null when deleted, missing or not JSON. */
function storedValue(entry: KvEntry | null | undefined): unknown {
  if (entry?.operation !== "PUT") return null;
  try {
    return entry.json<unknown>();
  } catch {
    return null;
  }
}

export interface AuditVerifyMethods {
  verifyChain(): Promise<ChainVerdict>;
  /** Writes the signed checkpoint soon (NATS only); appends meanwhile share it. */
  scheduleCheckpoint(): void;
  /** Moves the checkpoint forward to the chain's head; never back, whichever replica writes. */
  writeCheckpoint(): Promise<void>;
  /** The checkpoint, when there is one signed with our key. */
  readCheckpoint(): Promise<Checkpoint | null>;
  /**
   * The checkpoint's bucket, opened (created when missing) on first use; null without JetStream (the in-memory
   * channels, or NATS not connected yet: the channels connect after the services have started).
   */
  checkpointStore(): Promise<KV> | null;
}

type VerifyThis = Service<DbSettings> & DbServiceThis & DbMethods & AuditVerifyMethods & AuditState;

export function auditVerifyMixin(): Partial<ServiceSchema> {
  const schema: Partial<ServiceSchema<DbSettings, DbMethods & AuditVerifyMethods, DbServiceThis & AuditState>> = {
    actions: {
      /** Re-walks the whole chain: valid, or the first broken link (its seq and why). `audit:read`. */
      verify: {
        rest: "GET /verify",
        permissions: ["audit:read"],
        params: { $$strict: true },
        async handler(this: VerifyThis): Promise<ChainVerdict> {
          return this.verifyChain();
        },
      },
    },

    async stopped(this: VerifyThis) {
      clearTimeout(this.checkpointTimer);
    },

    methods: {
      checkpointStore(this: VerifyThis) {
        const jetstream = this.broker.channelAdapter.client;
        if (!jetstream) return null;
        const { namespace, jetstreamReplicas } = this.settings.config;
        this.checkpoints ??= jetstream.views
          .kv(checkpointBucket(namespace), { history: 1, replicas: jetstreamReplicas })
          .catch((err: Error) => {
            this.checkpoints = undefined; // opened again next time
            throw err;
          });
        return this.checkpoints;
      },

      scheduleCheckpoint(this: VerifyThis) {
        if (this.checkpointTimer || !this.broker.channelAdapter.client) return;
        this.checkpointTimer = setTimeout(() => {
          this.checkpointTimer = undefined;
          this.writeCheckpoint().catch((err: Error) => {
            this.logger.warn(`Audit checkpoint not written (the next append tries again): ${err.message}`);
          });
        }, CHECKPOINT_DELAY_MS);
      },

      async writeCheckpoint(this: VerifyThis) {
        const store = await this.checkpointStore();
        if (!store) return;
        const [head] = await this.rows<{ seq: string; hash: string }>(
          "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1",
        );
        if (!head) return;
        const checkpoint = signCheckpoint(this.anchorKey, Number(head.seq), head.hash);
        // Compare and set: a replica that read an older head loses the race and finds the newer checkpoint there.
        for (let attempt = 0; attempt < 3; attempt += 1) {
          const entry = await store.get(CHECKPOINT_KEY);
          const current = storedValue(entry);
          if (isSignedCheckpoint(this.anchorKey, current) && current.seq >= checkpoint.seq) return;
          try {
            const value = JSON.stringify(checkpoint);
            await (entry ? store.update(CHECKPOINT_KEY, value, entry.revision) : store.create(CHECKPOINT_KEY, value));
            return;
          } catch {
            // Another replica wrote meanwhile: read again.
          }
        }
      },

      async readCheckpoint(this: VerifyThis) {
        // Without it verify could not tell the newest records removed: unavailable rather than a partial answer.
        const entry = await Promise.resolve(this.checkpointStore())
          .then((store) => store?.get(CHECKPOINT_KEY))
          .catch((err: Error) => {
            throw new DependencyUnavailableError("NATS JetStream (the audit checkpoint)", err.message);
          });
        const value = storedValue(entry);
        if (value === null) return null;
        if (isSignedCheckpoint(this.anchorKey, value)) return value;
        this.logger.warn("The audit checkpoint is not signed with AUDIT_ANCHOR_KEY: ignored");
        return null;
      },

      async verifyChain(this: VerifyThis): Promise<ChainVerdict> {
        // Taken before the walk, so records appended while it runs cannot look like records removed.
        const checkpoint = await this.readCheckpoint();
        const knownHead = Math.max(this.headSeq, checkpoint?.seq ?? 0);
        let previousHash = GENESIS_HASH;
        let afterSeq = 0;
        let checked = 0;
        for (;;) {
          const rows = await this.rows<AuditRow>("SELECT * FROM audit_records WHERE seq > $1 ORDER BY seq LIMIT $2", [
            afterSeq,
            VERIFY_BATCH,
          ]);
          if (rows.length === 0) break;
          const links = rows.map((row) => ({
            seq: Number(row.seq),
            content: contentOf(row),
            prevHash: row.prev_hash,
            hash: row.hash,
            anchor: row.anchor,
          }));
          const verdict = verifyLinks(previousHash, links, this.anchorKey);
          if ("broken" in verdict) {
            return {
              valid: false,
              checked: checked + links.findIndex((l) => l.seq === verdict.broken.seq),
              brokenAt: verdict.broken,
            };
          }
          previousHash = verdict.lastHash;
          afterSeq = links[links.length - 1].seq;
          checked += links.length;
        }
        if (afterSeq < knownHead) {
          return { valid: false, checked, brokenAt: { seq: afterSeq + 1, id: null, reason: "records removed" } };
        }
        this.headSeq = Math.max(this.headSeq, afterSeq);
        const [missing] = await this.rows<{ record_id: string }>(`SELECT record_id FROM missing_records m
         WHERE NOT EXISTS (SELECT 1 FROM audit_records r WHERE r.id::text = m.record_id) ORDER BY noted_at LIMIT 1`);
        if (missing)
          return { valid: false, checked, brokenAt: { seq: null, id: missing.record_id, reason: "record missing" } };
        return { valid: true, checked };
      },
    },
  };
  return schema as Partial<ServiceSchema>;
}
