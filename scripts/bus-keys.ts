/**
 * Makes the bus's per-role credentials for a deployment (docs/security.md, "Trust boundaries"):
 *
 *   npm run -s bus-keys [-- gateway identity ...]   for each role its BUS_SIGNING_KEY, then the BUS_TRUSTED_KEYS line
 *   npm run -s bus-keys -- --env > .env              docker-compose's variables: NATS_<ROLE>_PASSWORD, BUS_<ROLE>_KEY
 *                                                    and BUS_TRUSTED_KEYS for the compose roles
 *
 * A signing key is a secret of its role alone (its Secret in Kubernetes); BUS_TRUSTED_KEYS holds public keys only and
 * goes to every role.
 */
import { randomBytes } from "node:crypto";
import { publicKeyOfSeed } from "../lib/bus-claims";

const DEPLOYED_ROLES = ["gateway", "identity", "commerce", "workflow", "providers", "operations"];

const args = process.argv.slice(2);
const asEnv = args.includes("--env");
const named = args.filter((arg) => arg !== "--env");
const roles = named.length > 0 ? named : DEPLOYED_ROLES;
const seeds = roles.map((role) => [role, randomBytes(32).toString("base64url")] as const);
const trusted = `BUS_TRUSTED_KEYS=${seeds.map(([role, seed]) => `${role}:${publicKeyOfSeed(seed)}`).join(",")}`;

if (asEnv) {
  for (const [role, seed] of seeds) {
    console.log(`NATS_${role.toUpperCase()}_PASSWORD=${randomBytes(24).toString("base64url")}`);
    console.log(`BUS_${role.toUpperCase()}_KEY=${seed}`);
  }
  console.log(trusted);
} else {
  for (const [role, seed] of seeds) console.log(`${role}\tBUS_SIGNING_KEY=${seed}`);
  console.log(`all\t${trusted}`);
}
