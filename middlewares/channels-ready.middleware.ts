/**
 * Marks the moment a node's durable channels can take messages: registered right after the channels middleware,
 * whose `started` hook connects the adapter and subscribes every consumer group only after the services' own
 * `started` (and after `broker.started` is already true). In the single-process default the in-memory adapter
 * delivers a message only to groups subscribed at that moment, so a publish before this point went nowhere.
 */
import type { Middleware, ServiceBroker } from "moleculer";
import { setChannelsReady } from "../lib/delivery";

export function ChannelsReadyMiddleware(): Middleware {
  return {
    name: "ChannelsReady",
    async started(broker: ServiceBroker) {
      setChannelsReady(broker, true);
    },
    async stopping(broker: ServiceBroker) {
      setChannelsReady(broker, false);
    },
  };
}
