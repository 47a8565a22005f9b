import { VerifiedTokenCache } from "../../lib/token-cache";
import type { VerifiedClaims } from "../../lib/signing-keys";

const claims = (sub: string, exp: number): VerifiedClaims => ({
  sub,
  typ: "user",
  roles: ["customer"],
  iss: "aicunet",
  aud: "aicunet-api",
  exp,
  iat: exp - 900,
  jti: `jti-${sub}`,
});

describe("the verified-token cache", () => {
  const now = 1_800_000_000_000;
  const inAMinute = now / 1000 + 60;

  it("answers a token's verification until the token's own expiry, then forgets it", () => {
    const cache = new VerifiedTokenCache(10);
    cache.set("token-a", { kid: "k1", claims: claims("a", inAMinute) });
    expect(cache.get("token-a", now)).toEqual({ kid: "k1", claims: claims("a", inAMinute) });
    expect(cache.get("token-a", inAMinute * 1000 - 1)?.claims.sub).toBe("a");
    expect(cache.get("token-a", inAMinute * 1000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("knows only the exact token: another one, however alike, is not in it", () => {
    const cache = new VerifiedTokenCache(10);
    cache.set("header.payload.signature", { kid: "k1", claims: claims("a", inAMinute) });
    expect(cache.get("header.payload.signaturf", now)).toBeUndefined();
    expect(cache.get("header.payload.signature ", now)).toBeUndefined();
  });

  it("stays within its bound by letting the oldest entry go", () => {
    const cache = new VerifiedTokenCache(2);
    cache.set("t1", { kid: "k1", claims: claims("1", inAMinute) });
    cache.set("t2", { kid: "k1", claims: claims("2", inAMinute) });
    cache.set("t3", { kid: "k1", claims: claims("3", inAMinute) });
    expect(cache.size).toBe(2);
    expect(cache.get("t1", now)).toBeUndefined();
    expect(cache.get("t2", now)?.claims.sub).toBe("2");
    expect(cache.get("t3", now)?.claims.sub).toBe("3");
  });

  it("forgets a token on request, and keeps nothing when its size is 0", () => {
    const cache = new VerifiedTokenCache(2);
    cache.set("t1", { kid: "k1", claims: claims("1", inAMinute) });
    cache.forget("t1");
    expect(cache.get("t1", now)).toBeUndefined();
    const off = new VerifiedTokenCache(0);
    off.set("t1", { kid: "k1", claims: claims("1", inAMinute) });
    expect(off.get("t1", now)).toBeUndefined();
  });
});
