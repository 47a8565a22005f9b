/**
 * The exec service's rows (rules and tasks) as its database holds them, and as the contracts (contracts/exec.ts) give
 * them to clients.
 */
import type { Condition } from "./rules";
import type { Rule, Task } from "../contracts/exec";

export interface RuleRow {
  id: string;
  name: string;
  event: string;
  condition: Condition[];
  action: string;
  params: Record<string, unknown>;
  enabled: boolean;
  built_in: boolean;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface TaskRow {
  id: string;
  kind: string;
  title: string;
  subject: string | null;
  details: Record<string, unknown>;
  correlation_id: string | null;
  status: "OPEN" | "DONE";
  created_at: Date;
}

export function toRule(row: RuleRow): Rule {
  return {
    id: row.id,
    name: row.name,
    event: row.event,
    condition: row.condition,
    action: row.action,
    params: row.params,
    enabled: row.enabled,
    builtIn: row.built_in,
    version: row.version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    kind: row.kind,
    title: row.title,
    subject: row.subject,
    details: row.details,
    correlationId: row.correlation_id,
    status: row.status,
    createdAt: row.created_at.toISOString(),
  };
}
