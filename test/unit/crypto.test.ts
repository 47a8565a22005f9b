import jwt from "jsonwebtoken";
import { hashPassword, verifyPassword } from "../../lib/passwords";
import {
  decryptPrivateKey,
  encryptPrivateKey,
  generateSigningKey,
  signAccessToken,
  tokenKeyId,
  verifyAccessToken,
} from "../../lib/signing-keys";
import { MemoryRateLimitStore } from "../../lib/rate-limit";

describe("passwords", () => {
  it("hashes with scrypt at OWASP's parameters and verifies only the right password", async () => {
    const hash = await hashPassword("correct horse battery");
    expect(hash).toMatch(/^scrypt\$17\$8\$1\$/);
    await expect(verifyPassword("correct horse battery", hash)).resolves.toBe(true);
    await expect(verifyPassword("correct horse batterz", hash)).resolves.toBe(false);
    await expect(verifyPassword("anything", "not-a-hash")).resolves.toBe(false);
    expect(await hashPassword("correct horse battery")).not.toBe(hash);
  });
});

describe("signing keys and access tokens", () => {
  const settings = { issuer: "aicunet", audience: "aicunet-api" };
  const key = generateSigningKey();

  it("keeps private keys encrypted at rest, and only the right secret opens them", () => {
    const sealed = encryptPrivateKey(key.privateKeyPem, "s".repeat(32));
    expect(sealed).not.toContain("PRIVATE KEY");
    expect(decryptPrivateKey(sealed, "s".repeat(32))).toBe(key.privateKeyPem);
    expect(() => decryptPrivateKey(sealed, "t".repeat(32))).toThrow();
  });

  it("signs ES256 tokens with the key id and the claims the API relies on", () => {
    const token = signAccessToken({ sub: "u1", typ: "user", roles: ["customer"] }, key, {
      ...settings,
      ttlSeconds: 60,
    });
    expect(tokenKeyId(token)).toBe(key.kid);
    const claims = verifyAccessToken(token, key.publicJwk, settings);
    expect(claims).toMatchObject({ sub: "u1", typ: "user", roles: ["customer"], iss: "aicunet", aud: "aicunet-api" });
    expect(claims.exp - claims.iat).toBe(60);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("rejects alg none, another key, a wrong audience or issuer, and expiry", () => {
    const other = generateSigningKey();
    const forged = signAccessToken(
      { sub: "u1", typ: "user" },
      { ...other, kid: key.kid },
      { ...settings, ttlSeconds: 60 },
    );
    expect(() => verifyAccessToken(forged, key.publicJwk, settings)).toThrow(/invalid signature/);
    const unsigned = jwt.sign({ sub: "u1", typ: "user", iss: "aicunet", aud: "aicunet-api" }, "", {
      algorithm: "none",
    });
    expect(() => verifyAccessToken(unsigned, key.publicJwk, settings)).toThrow();
    const good = signAccessToken({ sub: "u1", typ: "user" }, key, { ...settings, ttlSeconds: 60 });
    expect(() => verifyAccessToken(good, key.publicJwk, { ...settings, audience: "other" })).toThrow(/audience/);
    expect(() => verifyAccessToken(good, key.publicJwk, { ...settings, issuer: "other" })).toThrow(/issuer/);
    const expired = signAccessToken({ sub: "u1", typ: "user" }, key, { ...settings, ttlSeconds: -10 });
    expect(() => verifyAccessToken(expired, key.publicJwk, settings)).toThrow(/expired/);
  });

  it("rejects a token without exp, which would never end", () => {
    const endless = jwt.sign({ sub: "u1", typ: "user" }, key.privateKeyPem, {
      algorithm: "ES256",
      keyid: key.kid,
      ...settings,
    });
    expect(() => verifyAccessToken(endless, key.publicJwk, settings)).toThrow(/no exp/);
  });
});

describe("memory rate-limit store", () => {
  it("counts hits per key within a window and starts over after it", async () => {
    const store = new MemoryRateLimitStore();
    expect((await store.hit("a", 50)).count).toBe(1);
    expect((await store.hit("a", 50)).count).toBe(2);
    expect((await store.hit("b", 50)).count).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect((await store.hit("a", 50)).count).toBe(1);
  });
});
