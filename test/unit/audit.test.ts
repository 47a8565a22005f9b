import type { ServiceSchema } from "moleculer";
import {
  GENESIS_HASH,
  anchorOf,
  canonicalJson,
  chainHash,
  isSignedCheckpoint,
  redact,
  signCheckpoint,
  verifyLinks,
  type ChainLink,
} from "../../lib/audit";
import type { AuditContent } from "../../contracts/audit";

const KEY = "an-anchor-key-only-for-unit-tests-0123456789";

const content = (id: string, change: unknown = { name: "Widget" }): AuditContent => ({
  id,
  kind: "action",
  name: "products.update",
  actor: { type: "user", id: "u-1" },
  entity: { type: "product", id: "p-1" },
  requestId: "req-1",
  nodeId: "node-1",
  occurredAt: "2026-11-25T00:00:00.000Z",
  change,
});

/** A chain as the audit service writes it, anchored with `key`. */
function chain(contents: AuditContent[], key = KEY, firstHash = GENESIS_HASH, firstSeq = 1): ChainLink[] {
  let prevHash = firstHash;
  return contents.map((item, index) => {
    const hash = chainHash(prevHash, item);
    const link = { seq: firstSeq + index, content: item, prevHash, hash, anchor: anchorOf(key, hash) };
    prevHash = hash;
    return link;
  });
}

describe("audit trail rules", () => {
  it("redacts secrets at any depth and keeps the rest", () => {
    expect(
      redact({
        email: "a@b.c",
        password: "p",
        nested: { refreshToken: "t", clientSecret: "s", keep: 1 },
        list: [{ key: 1 }],
      }),
    ).toEqual({
      email: "a@b.c",
      password: "[redacted]",
      nested: { refreshToken: "[redacted]", clientSecret: "[redacted]", keep: 1 },
      list: [{ key: "[redacted]" }],
    });
  });

  it("hashes the same content the same way whatever the key order", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}',
    );
    const a = content("a", { x: 1, y: 2 });
    const b = { ...content("a", { y: 2, x: 1 }) };
    expect(chainHash(GENESIS_HASH, a)).toBe(chainHash(GENESIS_HASH, b));
  });

  it("accepts an intact chain and names the first changed record or broken link", () => {
    const links = chain([content("1"), content("2"), content("3")]);
    expect(verifyLinks(GENESIS_HASH, links, KEY)).toEqual({ lastHash: links[2].hash });

    const edited = links.map((link) => ({ ...link }));
    edited[1] = { ...edited[1], content: content("2", { name: "Forged" }) };
    expect(verifyLinks(GENESIS_HASH, edited, KEY)).toEqual({ broken: { seq: 2, id: "2", reason: "content changed" } });

    const removed = [links[0], links[2]];
    expect(verifyLinks(GENESIS_HASH, removed, KEY)).toEqual({ broken: { seq: 3, id: "3", reason: "link broken" } });
  });

  it("names the first record rewritten consistently by someone without the anchor key", () => {
    const links = chain([content("1"), content("2"), content("3")]);
    // Every hash from the second record on recomputed, as the database owner can; the anchors made with another key.
    const rewritten = [
      links[0],
      ...chain([content("2", { name: "Forged" }), content("3")], "a guess", links[0].hash, 2),
    ];
    expect(verifyLinks(GENESIS_HASH, rewritten, KEY)).toEqual({ broken: { seq: 2, id: "2", reason: "not anchored" } });
    // Or with the anchors left as they were, or removed.
    const kept = rewritten.map((link, index) => ({ ...link, anchor: links[index].anchor }));
    expect(verifyLinks(GENESIS_HASH, kept, KEY)).toEqual({ broken: { seq: 2, id: "2", reason: "not anchored" } });
    const removed = links.map((link) => ({ ...link, anchor: null }));
    expect(verifyLinks(GENESIS_HASH, removed, KEY)).toEqual({ broken: { seq: 1, id: "1", reason: "not anchored" } });
  });
});

describe("audit checkpoints", () => {
  it("are accepted only as signed with the anchor key, for the seq and hash they name", () => {
    const checkpoint = signCheckpoint(KEY, 7, "a".repeat(64));
    expect(isSignedCheckpoint(KEY, checkpoint)).toBe(true);
    expect(isSignedCheckpoint("another key", checkpoint)).toBe(false);
    expect(isSignedCheckpoint(KEY, { ...checkpoint, seq: 8 })).toBe(false);
    expect(isSignedCheckpoint(KEY, { ...checkpoint, hash: "b".repeat(64) })).toBe(false);
    expect(isSignedCheckpoint(KEY, { ...checkpoint, signature: "not hex" })).toBe(false);
    expect(isSignedCheckpoint(KEY, null)).toBe(false);
  });
});

describe("audit declarations", () => {
  it("are on every action a client can call to change something", async () => {
    // Loading a service builds its database handle, which needs a URL (nothing connects).
    process.env.DATABASE_URL ??= "postgres://nobody@127.0.0.1:1/none";
    const { SERVICE_LOADERS } = await import("../../services");
    const missing: string[] = [];
    for (const load of Object.values(SERVICE_LOADERS)) {
      const schema = (await load!()) as ServiceSchema & {
        actions?: Record<string, { rest?: unknown; audit?: unknown }>;
      };
      for (const [name, action] of Object.entries(schema.actions ?? {})) {
        const rest = typeof action?.rest === "string" ? action.rest : "";
        if (/^(POST|PUT|PATCH|DELETE) /.test(rest) && !action.audit) missing.push(`${schema.name}.${name} (${rest})`);
      }
    }
    expect(missing).toEqual([]);
  });
});
