/**
 * The saga bench's load driver: places happy-path orders through the gateway (`POST /api/orders`), in closed loops
 * (saturation) or at a fixed rate (open loop), and learns when each order's saga has ended by polling the sagas
 * database for all of the waited-for ones at once.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Client } from "pg";
import type { Order } from "../contracts/orders";
import { apiRequest, orderBody } from "../support/api";

/** How often the bench asks the sagas database which of the waited-for sagas have ended. */
const POLL_MS = 100;
/** How long a phase's sagas may take to end after its last order was placed. */
export const DRAIN_TIMEOUT_MS = 60_000;

export interface Placed {
  orderId?: string;
  /** Date.now() just before the POST was sent. */
  sentAt: number;
  postMs: number;
  status: number;
}

/** Places an order and times its POST; a failed POST is a result (status 0 when no answer came), not an error. */
export class Gateway {
  constructor(
    private base: string,
    private token: string,
    private productId: string,
  ) {}

  async place(tag: string): Promise<Placed> {
    const sentAt = Date.now();
    const started = performance.now();
    try {
      const res = await apiRequest(this.base, this.token, "POST", "/api/orders", orderBody(this.productId, tag));
      const body = await res.text();
      const postMs = performance.now() - started;
      if (res.status !== 201) return { sentAt, postMs, status: res.status };
      return { orderId: (JSON.parse(body) as Order).id, sentAt, postMs, status: res.status };
    } catch {
      return { sentAt, postMs: performance.now() - started, status: 0 };
    }
  }
}

/** Resolves `ended(orderId)` once the order's saga has ended, from one query every POLL_MS for all waited ones. */
export class SagaWatch {
  private waiting = new Map<string, () => void>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Queries sent so far: each is one committed transaction in the sagas database, not the services' doing. */
  queries = 0;

  constructor(private sagas: Client) {}

  start(): void {
    const round = async () => {
      if (this.waiting.size > 0) {
        this.queries += 1;
        const { rows } = await this.sagas.query<{ subject_id: string }>(
          `SELECT subject_id FROM sagas WHERE definition = 'order' AND subject_id = ANY($1)
             AND status IN ('COMPLETED', 'COMPENSATED', 'FAILED')`,
          [[...this.waiting.keys()]],
        );
        for (const { subject_id } of rows) {
          this.waiting.get(subject_id)?.();
          this.waiting.delete(subject_id);
        }
      }
    };
    const loop = () => {
      round()
        .catch((err: Error) => console.error(`saga watch: ${err.message}`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, POLL_MS);
        });
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  ended(orderId: string): Promise<void> {
    return new Promise((resolve) => this.waiting.set(orderId, resolve));
  }
}

/** Resolves with "timeout" after `ms`; its timer does not keep the process alive. */
export const giveUpAfter = (ms: number) =>
  new Promise<"timeout">((resolve) => {
    setTimeout(() => resolve("timeout"), ms).unref();
  });

/** `loops` closed loops, each placing an order and waiting for its saga to end, for `seconds`. */
export async function closedLoop(gateway: Gateway, watch: SagaWatch, loops: number, seconds: number, tag: string) {
  const placed: Placed[] = [];
  const deadline = performance.now() + seconds * 1000;
  const giveUp = giveUpAfter(seconds * 1000 + DRAIN_TIMEOUT_MS);
  let n = 0;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < deadline) {
        const p = await gateway.place(`${tag}-${n++}`);
        placed.push(p);
        if (!p.orderId) {
          await sleep(100);
          continue;
        }
        if ((await Promise.race([watch.ended(p.orderId), giveUp])) === "timeout") return;
      }
    }),
  );
  return placed;
}

/** Orders at `rate` per second for `seconds`, each sent at its time (open loop); resolves once their sagas ended. */
export async function openLoop(gateway: Gateway, watch: SagaWatch, rate: number, seconds: number) {
  const count = Math.round(rate * seconds);
  const sends: Promise<Placed>[] = [];
  const ends: Promise<void>[] = [];
  let sendLagMs = 0;
  const start = performance.now() + 20;
  for (let i = 0; i < count; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    sendLagMs = Math.max(sendLagMs, performance.now() - due);
    sends.push(
      gateway.place(`RATE-${i}`).then((p) => {
        if (p.orderId) ends.push(watch.ended(p.orderId));
        return p;
      }),
    );
  }
  const placed = await Promise.all(sends);
  await Promise.race([Promise.all(ends), giveUpAfter(DRAIN_TIMEOUT_MS)]);
  return { placed, sendLagMs };
}
