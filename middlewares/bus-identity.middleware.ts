/**
 * The bus is a trust boundary: the caller identity (`meta.caller`) a call or event carries to another node is signed
 * by the sender with its role's key and verified by the receiver before any handler sees it (lib/bus-claims.ts). A
 * packet whose caller is unsigned, badly signed, expired, bound to another call or beyond the signing role's remit
 * arrives without a caller, so the permissions middleware refuses it (fail closed). A response never changes the
 * caller of the context that made the call.
 *
 * Packets are signed and checked where transit publishes and receives them, so every remote call and event passes
 * here whichever API sent it. Without a transporter nothing crosses a node boundary and this does nothing.
 */
import type { KeyObject } from "node:crypto";
import type { Middleware, ServiceBroker } from "moleculer";
import {
  CLAIM_META_KEY,
  publicKeyOfSeed,
  signClaim,
  signingKeyFromSeed,
  trustedKeys,
  verifyClaim,
  type ClaimBinding,
  type SigningKey,
} from "../lib/bus-claims";
import type { Config } from "../lib/config";
import type { Caller } from "../contracts/caller";
import { developmentSecret } from "../lib/secrets";

interface PacketPayload {
  sender?: string;
  id?: string;
  action?: string;
  event?: string;
  params?: unknown;
  data?: unknown;
  meta?: Record<string, unknown> & { caller?: Caller };
}

interface Packet {
  type: string;
  target?: string | null;
  payload: PacketPayload;
}

type Publish = (packet: Packet) => Promise<void>;
type MessageHandler = (cmd: string, packet: Packet) => Promise<boolean>;

/** What a request or event packet binds its claim to; null for packets that carry no caller of their own. */
function bindingOf(kind: string, payload: PacketPayload): ClaimBinding | null {
  if (kind === "REQ") {
    return {
      kind,
      sender: payload.sender ?? "",
      name: payload.action ?? "",
      id: payload.id ?? "",
      params: payload.params,
    };
  }
  if (kind === "EVENT") {
    return {
      kind,
      sender: payload.sender ?? "",
      name: payload.event ?? "",
      id: payload.id ?? "",
      params: payload.data,
    };
  }
  return null;
}

export function BusIdentityMiddleware(cfg: Config): Middleware {
  let signer: SigningKey | undefined;
  let keys: ReadonlyMap<string, KeyObject> = new Map();
  let logger: ReturnType<ServiceBroker["getLogger"]> | undefined;
  let nodeID = "";

  async function loadKeys(broker: ServiceBroker): Promise<void> {
    let seed = cfg.bus.signingKey;
    if (!seed) {
      // Development only (production refuses to start without it): one key shared by the nodes of this data directory.
      const secret = await developmentSecret(cfg.dataDir, "bus-signing-key");
      if (secret.generated) broker.logger.warn(`Generated a development bus signing key in ${cfg.dataDir}/secrets/`);
      seed = secret.value;
    }
    signer = signingKeyFromSeed(cfg.bus.role, seed);
    const listed = new Map(Object.entries(cfg.bus.trustedKeys));
    keys = trustedKeys(listed.size > 0 ? listed : new Map([[cfg.bus.role, publicKeyOfSeed(seed)]]));
  }

  function signed(packet: Packet): Packet {
    const caller = packet.payload.meta?.caller;
    const binding = bindingOf(packet.type, { ...packet.payload, sender: nodeID });
    if (!caller || !binding || !signer) return packet;
    // The payload's meta is the context's own object: the claim goes on a copy, never into the caller's context.
    const meta = { ...packet.payload.meta, [CLAIM_META_KEY]: signClaim(signer, binding, caller) };
    return { ...packet, payload: { ...packet.payload, meta } };
  }

  function checked(cmd: string, packet: Packet): Packet {
    const meta = packet.payload.meta;
    if (!meta) return packet;
    if (cmd === "RES") {
      // A callee answers; it does not get to say who its caller is.
      delete meta.caller;
      delete meta[CLAIM_META_KEY];
      return packet;
    }
    const binding = bindingOf(cmd, packet.payload);
    if (!binding) return packet;
    const claim = meta[CLAIM_META_KEY];
    delete meta[CLAIM_META_KEY];
    if (!meta.caller) return packet;
    const verdict = verifyClaim(keys, claim, binding, meta.caller);
    if (!verdict.valid) {
      logger?.warn(
        `Dropped the ${meta.caller.type} caller of ${binding.kind} ${binding.name} from node ${binding.sender}: ${verdict.reason}`,
      );
      delete meta.caller;
    }
    return packet;
  }

  const middleware = {
    name: "BusIdentity",
    created(broker: ServiceBroker) {
      logger = broker.getLogger("bus-identity");
      nodeID = broker.nodeID;
    },
    async starting(broker: ServiceBroker) {
      if (broker.transit) await loadKeys(broker);
    },
    transitPublish(next: Publish): Publish {
      return (packet) => next(signed(packet));
    },
    transitMessageHandler(next: MessageHandler): MessageHandler {
      return (cmd, packet) => next(cmd, checked(cmd, packet));
    },
  };
  // Moleculer's typings declare the transit hooks as returning a promise rather than the wrapped function.
  return middleware as unknown as Middleware;
}
