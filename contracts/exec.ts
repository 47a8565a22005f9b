/** Rules and the tasks they create, as the exec service answers them: to the REPL, tests and benches. */
import type { Condition } from "../lib/rules";

export interface Rule {
  id: string;
  name: string;
  event: string;
  condition: Condition[];
  action: string;
  params: Record<string, unknown>;
  enabled: boolean;
  builtIn: boolean;
  version: number;
  createdAt: string;
  updatedAt: string;
}

export type RuleInput = Pick<Rule, "name" | "event" | "condition" | "action" | "params" | "enabled">;

export interface Task {
  id: string;
  kind: string;
  title: string;
  subject: string | null;
  details: Record<string, unknown>;
  correlationId: string | null;
  status: "OPEN" | "DONE";
  createdAt: string;
}
