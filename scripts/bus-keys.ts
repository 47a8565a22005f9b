/**
 * Makes the bus's caller-claim keys for a deployment (docs/security.md, "Trust boundaries"):
 *
 *   npm run bus-keys [-- gateway identity commerce ...]
 *
 * prints, for each role (the Kubernetes and compose roles by default), its `BUS_SIGNING_KEY` (a secret: it goes
 * into that role's Secret only) and then the one `BUS_TRUSTED_KEYS` line every role gets (public keys only).
 */
import { randomBytes } from "node:crypto";
import { publicKeyOfSeed } from "../lib/bus-claims";

const DEPLOYED_ROLES = ["gateway", "identity", "commerce", "workflow", "providers", "operations"];

const roles = process.argv.slice(2).length > 0 ? process.argv.slice(2) : DEPLOYED_ROLES;
const seeds = roles.map((role) => [role, randomBytes(32).toString("base64url")] as const);
for (const [role, seed] of seeds) console.log(`${role}\tBUS_SIGNING_KEY=${seed}`);
console.log(`all\tBUS_TRUSTED_KEYS=${seeds.map(([role, seed]) => `${role}:${publicKeyOfSeed(seed)}`).join(",")}`);
