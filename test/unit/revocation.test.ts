import { RevocationList, subjectOf } from "../../lib/revocation";

describe("revocation list", () => {
  const lifetimeMs = 900_000;
  const now = Date.parse("2026-12-02T10:00:00Z");
  const subject = subjectOf("user", "u1");
  const revocation = (minGeneration: number, revokedAt = new Date(now).toISOString()) => ({
    subject,
    minGeneration,
    revokedAt,
  });

  it("refuses tokens below the raised generation of their subject, and no one else's", () => {
    const list = new RevocationList(lifetimeMs);
    list.apply(revocation(2), now);
    expect(list.refuses(subject, 0, now)).toBe(true);
    expect(list.refuses(subject, 1, now)).toBe(true);
    expect(list.refuses(subject, 2, now)).toBe(false);
    expect(list.refuses(subjectOf("client", "u1"), 0, now)).toBe(false);
  });

  it("ignores an older revocation that arrives late", () => {
    const list = new RevocationList(lifetimeMs);
    list.apply(revocation(3), now);
    list.apply(revocation(2), now);
    expect(list.refuses(subject, 2, now)).toBe(true);
  });

  it("forgets an entry once every token it refuses has expired (lifetime plus clock skew)", () => {
    const list = new RevocationList(lifetimeMs);
    list.apply(revocation(1), now);
    expect(list.refuses(subject, 0, now + lifetimeMs + 59_000)).toBe(true);
    expect(list.refuses(subject, 0, now + lifetimeMs + 61_000)).toBe(false);
    expect(list.size).toBe(0);
    list.apply(revocation(1, new Date(now - lifetimeMs - 61_000).toISOString()), now);
    expect(list.size).toBe(0);
    list.apply(revocation(1), now);
    list.prune(now + lifetimeMs + 61_000);
    expect(list.size).toBe(0);
  });
});
