/**
 * What the sagas service (services/sagas.service.ts) and its mixins (mixins/saga-*.mixin.ts) share on one node: the
 * definitions it knows, the executor that drives its sagas and the name it holds their leases under. The service
 * sets them when it is created.
 */
import type { StoredContext } from "../contracts/sagas";
import type { SagaDefinition } from "./saga";
import type { SagaExecutor } from "./saga-executor";

export interface SagaEngineState {
  definitions: Record<string, SagaDefinition<StoredContext>>;
  executor: SagaExecutor;
  /** This engine's name on the leases it holds: `<node id>/<instance id>`, new with every process. */
  leaseOwner: string;
}

export interface SagaEngineMethods {
  /** The definition named `name`; throws when this node lacks it. */
  definition(name: string): SagaDefinition<StoredContext>;
}
