/**
 * Fixed-window request counters for the gateway's rate limits. In memory for a single gateway; in Redis when
 * several gateway replicas must share one limit (an INCR and a PEXPIRE in one Lua script, so the window starts with
 * the first request and the count is exact across replicas), with the gateway's memory standing in while Redis is out.
 */
import Redis from "ioredis";

export interface WindowCount {
  count: number;
  /** Milliseconds until the window resets. */
  resetInMs: number;
}

/** Whole seconds until the window resets, for `Retry-After`: at least 1. */
export function retryAfterSeconds(window: WindowCount): number {
  return Math.max(1, Math.ceil(window.resetInMs / 1000));
}

export interface RateLimitStore {
  hit(key: string, windowMs: number): Promise<WindowCount>;
  /** The window's count without adding to it (0 when no window is open). */
  peek(key: string): Promise<WindowCount>;
  close(): Promise<void>;
}

export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    const now = Date.now();
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      if (this.windows.size > 100_000) this.evictExpired(now);
      window = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, window);
    }
    window.count += 1;
    return { count: window.count, resetInMs: window.resetAt - now };
  }

  async peek(key: string): Promise<WindowCount> {
    const now = Date.now();
    const window = this.windows.get(key);
    return window && window.resetAt > now
      ? { count: window.count, resetInMs: window.resetAt - now }
      : { count: 0, resetInMs: 0 };
  }

  private evictExpired(now: number) {
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
  }

  async close(): Promise<void> {
    this.windows.clear();
  }
}

const HIT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}`;

export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: Redis;

  constructor(
    url: string,
    private readonly prefix: string,
  ) {
    this.redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false });
    // A lost connection reaches the gateway as failed commands, which the fallback store reports through the node's
    // logger; with no listener, ioredis would also print every reconnection's error to stderr, past that logger.
    this.redis.on("error", () => undefined);
  }

  async hit(key: string, windowMs: number): Promise<WindowCount> {
    const [count, ttl] = (await this.redis.eval(HIT_SCRIPT, 1, `${this.prefix}${key}`, windowMs)) as [number, number];
    return { count, resetInMs: ttl > 0 ? ttl : windowMs };
  }

  async peek(key: string): Promise<WindowCount> {
    const [count, ttl] = await Promise.all([
      this.redis.get(`${this.prefix}${key}`),
      this.redis.pttl(`${this.prefix}${key}`),
    ]);
    return count === null ? { count: 0, resetInMs: 0 } : { count: Number(count), resetInMs: Math.max(ttl, 0) };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

const FALLBACK_WARNING_EVERY_MS = 60_000;

/**
 * A shared store with this gateway's own memory behind it: while the shared store (Redis) is out, each gateway counts
 * in its own memory, so a limit then holds per replica rather than not at all. The outage is reported through `warn`,
 * at most once a minute.
 */
export class FallbackRateLimitStore implements RateLimitStore {
  private warnedAt = 0;

  constructor(
    private readonly shared: RateLimitStore,
    /** This gateway's own counters: the fallback, and the store of limits that are per gateway anyway. */
    readonly local: RateLimitStore,
    private readonly warn: (message: string) => void,
  ) {}

  hit(key: string, windowMs: number): Promise<WindowCount> {
    return this.withFallback((store) => store.hit(key, windowMs));
  }

  peek(key: string): Promise<WindowCount> {
    return this.withFallback((store) => store.peek(key));
  }

  async close(): Promise<void> {
    await Promise.all([this.shared.close(), this.local.close()]);
  }

  private async withFallback(read: (store: RateLimitStore) => Promise<WindowCount>): Promise<WindowCount> {
    try {
      return await read(this.shared);
    } catch (err) {
      if (Date.now() - this.warnedAt > FALLBACK_WARNING_EVERY_MS) {
        this.warnedAt = Date.now();
        this.warn(`Rate limit store unavailable, counting per gateway meanwhile: ${(err as Error).message}`);
      }
      return read(this.local);
    }
  }
}
