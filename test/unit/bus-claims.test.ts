import { randomBytes } from "node:crypto";
import {
  CLAIM_TTL_MS,
  publicKeyOfSeed,
  signClaim,
  signingKeyFromSeed,
  trustedKeys,
  verifyClaim,
  type ClaimBinding,
} from "../../lib/bus-claims";
import { SYSTEM_CALLER } from "../../lib/permissions";
import type { Caller } from "../../contracts/caller";

const seed = (): string => randomBytes(32).toString("base64url");
const gatewaySeed = seed();
const workflowSeed = seed();
const gateway = signingKeyFromSeed("gateway", gatewaySeed);
const workflow = signingKeyFromSeed("workflow", workflowSeed);
const keys = trustedKeys(
  new Map([
    ["gateway", publicKeyOfSeed(gatewaySeed)],
    ["workflow", publicKeyOfSeed(workflowSeed)],
  ]),
);
const admin: Caller = { type: "user", id: "u1", roles: ["admin"], permissions: ["*"] };
const call: ClaimBinding = {
  kind: "REQ",
  sender: "workflow-1",
  name: "auth.users.update",
  id: "ctx-1",
  params: { id: "u2", roles: ["admin"] },
};

describe("caller claims", () => {
  it("verify for the call they were signed for", () => {
    expect(verifyClaim(keys, signClaim(workflow, call, SYSTEM_CALLER), call, SYSTEM_CALLER)).toEqual({ valid: true });
    expect(verifyClaim(keys, signClaim(gateway, call, admin), call, admin)).toEqual({ valid: true });
  });

  it("are refused when missing, from an unknown key, or tampered with", () => {
    expect(verifyClaim(keys, undefined, call, SYSTEM_CALLER)).toMatchObject({
      valid: false,
      reason: "no signed claim",
    });
    const stranger = signingKeyFromSeed("workflow", seed());
    expect(verifyClaim(keys, signClaim(stranger, call, SYSTEM_CALLER), call, SYSTEM_CALLER)).toMatchObject({
      valid: false,
      reason: "bad signature",
    });
    const rogueRole = signingKeyFromSeed("rogue", seed());
    expect(verifyClaim(keys, signClaim(rogueRole, call, SYSTEM_CALLER), call, SYSTEM_CALLER)).toMatchObject({
      valid: false,
      reason: "no trusted key for role rogue",
    });
    const claim = signClaim(workflow, call, { type: "anonymous" });
    expect(verifyClaim(keys, claim, call, SYSTEM_CALLER)).toMatchObject({ valid: false, reason: "bad signature" });
  });

  it.each([
    ["another action", { name: "auth.clients.create" }],
    ["another context", { id: "ctx-2" }],
    ["other params", { params: { id: "u3", roles: ["admin"] } }],
    ["another sender", { sender: "rogue-1" }],
    ["an event", { kind: "EVENT" }],
  ])("cannot be moved onto %s", (_, change) => {
    const claim = signClaim(workflow, call, SYSTEM_CALLER);
    expect(verifyClaim(keys, claim, { ...call, ...change }, SYSTEM_CALLER)).toMatchObject({ valid: false });
  });

  it("expire", () => {
    const signedAt = Date.now();
    const claim = signClaim(workflow, call, SYSTEM_CALLER, signedAt);
    expect(verifyClaim(keys, claim, call, SYSTEM_CALLER, signedAt + CLAIM_TTL_MS - 1)).toEqual({ valid: true });
    expect(verifyClaim(keys, claim, call, SYSTEM_CALLER, signedAt + CLAIM_TTL_MS + 1)).toMatchObject({
      valid: false,
      reason: "the claim has expired",
    });
  });

  it("let the gateway assert the system identity only on its own reads", () => {
    expect(verifyClaim(keys, signClaim(gateway, call, SYSTEM_CALLER), call, SYSTEM_CALLER)).toMatchObject({
      valid: false,
      reason: "role gateway may not assert a system caller on auth.users.update",
    });
    const jwks: ClaimBinding = { ...call, name: "auth.jwks", params: {} };
    expect(verifyClaim(keys, signClaim(gateway, jwks, SYSTEM_CALLER), jwks, SYSTEM_CALLER)).toEqual({ valid: true });
    const event: ClaimBinding = { ...jwks, kind: "EVENT" };
    expect(verifyClaim(keys, signClaim(gateway, event, SYSTEM_CALLER), event, SYSTEM_CALLER)).toMatchObject({
      valid: false,
    });
  });
});
