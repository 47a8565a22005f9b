import {
  FallbackRateLimitStore,
  MemoryRateLimitStore,
  retryAfterSeconds,
  type RateLimitStore,
} from "../../lib/rate-limit";

/** A shared store that is out (Redis unreachable) until it is brought back. */
class OutageStore implements RateLimitStore {
  out = true;
  private readonly counters = new MemoryRateLimitStore();

  hit(key: string, windowMs: number) {
    return this.out ? Promise.reject(new Error("connect ECONNREFUSED")) : this.counters.hit(key, windowMs);
  }

  peek(key: string) {
    return this.out ? Promise.reject(new Error("connect ECONNREFUSED")) : this.counters.peek(key);
  }

  async close() {}
}

describe("the rate limit store with a fallback", () => {
  it("counts in the shared store while it answers, and not in the gateway's own memory", async () => {
    const shared = new MemoryRateLimitStore();
    const local = new MemoryRateLimitStore();
    const store = new FallbackRateLimitStore(shared, local, () => {});
    await store.hit("ip:1", 60_000);
    expect((await store.hit("ip:1", 60_000)).count).toBe(2);
    expect((await shared.peek("ip:1")).count).toBe(2);
    expect((await local.peek("ip:1")).count).toBe(0);
  });

  it("counts in the gateway's own memory while the shared store is out, so the limit still holds", async () => {
    const shared = new OutageStore();
    const store = new FallbackRateLimitStore(shared, new MemoryRateLimitStore(), () => {});
    await store.hit("ip:1", 60_000);
    expect((await store.hit("ip:1", 60_000)).count).toBe(2);
    expect((await store.peek("ip:1")).count).toBe(2);
    shared.out = false;
    expect((await store.hit("ip:1", 60_000)).count).toBe(1);
  });

  it("says the shared store is out once a minute, not on every request", async () => {
    const warnings: string[] = [];
    const store = new FallbackRateLimitStore(new OutageStore(), new MemoryRateLimitStore(), (message) =>
      warnings.push(message),
    );
    for (let i = 0; i < 5; i += 1) await store.hit("ip:1", 60_000);
    expect(warnings).toEqual(["Rate limit store unavailable, counting per gateway meanwhile: connect ECONNREFUSED"]);
  });
});

describe("Retry-After of a window", () => {
  it("is the whole seconds until the window resets, and never 0", () => {
    expect(retryAfterSeconds({ count: 9, resetInMs: 59_001 })).toBe(60);
    expect(retryAfterSeconds({ count: 9, resetInMs: 1000 })).toBe(1);
    expect(retryAfterSeconds({ count: 9, resetInMs: 0 })).toBe(1);
  });
});
