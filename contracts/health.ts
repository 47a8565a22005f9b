/** Readiness and cluster health as nodes report them and the gateway sums them: to probes, the console and tests. */

export interface ReadinessCheck {
  /** What was checked, e.g. `database:products` or `transporter`. */
  name: string;
  ok: boolean;
  latencyMs: number;
  /** Why it failed; never a credential. */
  error?: string;
}

export interface NodeReadiness {
  nodeID: string;
  ready: boolean;
  services: string[];
  checks: ReadinessCheck[];
  uptimeSeconds: number;
}

/** `up`: connected; `left`: said goodbye (a stop or a scale-down); `lost`: stopped answering (a crash). */
export type NodeState = "up" | "left" | "lost";

export type ClusterNodeHealth = NodeReadiness & { state: NodeState; available: boolean; hostname?: string };

export interface ClusterHealth {
  /** `degraded` while a connected node is not ready or a node was lost; nodes that left do not count. */
  status: "ok" | "degraded";
  nodes: ClusterNodeHealth[];
}
