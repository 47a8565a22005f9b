/**
 * Project commands for the Moleculer REPL (`npm run dev`, `npm run repl`). They call the services as the system
 * identity, like every REPL call, so they work on whichever node hosts the service.
 */
import type { BrokerOptions, ServiceBroker } from "moleculer";

type ReplCustomCommand = NonNullable<NonNullable<BrokerOptions["replOptions"]>["customCommands"]>[number];
import { describeBreak } from "../lib/audit";
import { asSystem } from "../lib/permissions";
import type { Page } from "../lib/paging";
import type { DeadLetter, DeadLetterPage } from "../contracts/dead-letters";
import type { Saga, SagaPage } from "../contracts/sagas";
import type { ChainVerdict } from "../contracts/audit";
import type { Rule, RuleInput } from "../contracts/exec";

/** What moleculer-repl hands a command at run time (its typings say `string[]`). */
interface CommandArgs {
  options: Record<string, string | undefined>;
  [operand: string]: unknown;
}

type Print = (text: string) => void;

/** `dlq list|show|replay|discard`: the dead-letter queue from the REPL. Prints what it did; returns nothing. */
export async function dlqCommand(
  broker: ServiceBroker,
  verb: string,
  id: string | undefined,
  options: { status?: string; channel?: string; group?: string; search?: string; reason?: string },
  print: Print,
): Promise<void> {
  const needId = () => {
    if (!id) throw new Error(`dlq ${verb} needs the dead letter's id`);
    return { id };
  };
  switch (verb) {
    case "list": {
      const { reason: _reason, ...filters } = options;
      const filter = Object.fromEntries(
        Object.entries({ status: options.status ?? "PENDING", ...filters }).filter(([, value]) => value),
      );
      const page = await broker.call<DeadLetterPage, object>("dlq.list", { ...filter, pageSize: 100 }, asSystem());
      print(`${page.total} dead letter(s)${page.total > page.rows.length ? `, the newest ${page.rows.length}` : ""}`);
      for (const entry of page.rows) {
        print(
          `${entry.id}  ${entry.failedAt}  ${entry.status.padEnd(9)} ${entry.channel} → ${entry.group}  ` +
            `${entry.attempts} attempt(s)  ${entry.error.type}: ${entry.error.message}`,
        );
      }
      return;
    }
    case "show":
      print(JSON.stringify(await broker.call<DeadLetter, object>("dlq.get", needId(), asSystem()), null, 2));
      return;
    case "replay": {
      const entry = await broker.call<DeadLetter, object>("dlq.replay", needId(), asSystem());
      print(`Replayed ${entry.id} to ${entry.channel} (replay ${entry.replayCount})`);
      return;
    }
    case "discard": {
      if (!options.reason) throw new Error("dlq discard needs --reason: why the message is given up on");
      const entry = await broker.call<DeadLetter, object>(
        "dlq.discard",
        { ...needId(), reason: options.reason },
        asSystem(),
      );
      print(`Discarded ${entry.id}`);
      return;
    }
    default:
      throw new Error(`Unknown dlq command "${verb}": list, show, replay or discard`);
  }
}

/** `saga list|show|retry|compensate`: the sagas from the REPL. Prints what it did; returns nothing. */
export async function sagaCommand(
  broker: ServiceBroker,
  verb: string,
  id: string | undefined,
  options: { status?: string; stalled?: boolean },
  print: Print,
): Promise<void> {
  const needId = () => {
    if (!id) throw new Error(`saga ${verb} needs the saga's id`);
    return { id };
  };
  switch (verb) {
    case "list": {
      const filter = {
        ...(options.status ? { status: options.status } : {}),
        ...(options.stalled ? { stalled: true } : {}),
      };
      const page = await broker.call<SagaPage, object>("sagas.list", { ...filter, pageSize: 100 }, asSystem());
      print(`${page.total} saga(s)${page.total > page.rows.length ? `, the latest ${page.rows.length}` : ""}`);
      for (const saga of page.rows) {
        print(
          `${saga.id}  ${saga.updatedAt}  ${saga.status.padEnd(12)} ${saga.definition} ${saga.subjectId}  ` +
            `at ${saga.step} (attempt ${saga.attempt})` +
            (saga.stalled ? `  STALLED: no engine holds it (last: ${saga.leaseOwner ?? "none"})` : "") +
            `${saga.reason ? `  ${saga.reason}` : ""}`,
        );
      }
      return;
    }
    case "show": {
      const saga = await broker.call<Saga, object>("sagas.get", needId(), asSystem());
      print(`${saga.id} ${saga.definition} ${saga.subjectId}: ${saga.status}${saga.reason ? ` (${saga.reason})` : ""}`);
      for (const entry of saga.timeline ?? []) {
        const took = entry.durationMs === null ? "" : ` ${entry.durationMs} ms`;
        print(
          `  ${entry.at}  ${entry.step} #${entry.attempt}  ${entry.outcome}${took}${entry.message ? `  ${entry.message}` : ""}`,
        );
      }
      return;
    }
    case "retry":
    case "compensate": {
      const saga = await broker.call<Saga, object>(`sagas.${verb}`, needId(), asSystem());
      print(`Saga ${saga.id} is ${saga.status}, at ${saga.step}`);
      return;
    }
    default:
      throw new Error(`Unknown saga command "${verb}": list, show, retry or compensate`);
  }
}

/** `rule list|show|enable|disable|delete`: the exec service's rules from the REPL. Prints what it did. */
export async function ruleCommand(broker: ServiceBroker, verb: string, id: string | undefined, print: Print) {
  const needId = () => {
    if (!id) throw new Error(`rule ${verb} needs the rule's id`);
    return { id };
  };
  const describe = (rule: Rule) =>
    `${rule.id}  ${rule.enabled ? "enabled " : "disabled"}  ${rule.name}: on ${rule.event} → ${rule.action}` +
    `${rule.builtIn ? "  (built-in)" : ""}`;
  switch (verb) {
    case "list": {
      const rules = await broker.call<Page<Rule>, object>("exec.rules.list", {}, asSystem());
      print(`${rules.total} rule(s)`);
      for (const rule of rules.rows) print(describe(rule));
      return;
    }
    case "show":
      print(JSON.stringify(await broker.call<Rule, object>("exec.rules.get", needId(), asSystem()), null, 2));
      return;
    case "enable":
    case "disable": {
      const { name, event, condition, action, params } = await broker.call<Rule, object>(
        "exec.rules.get",
        needId(),
        asSystem(),
      );
      const input: RuleInput = { name, event, condition, action, params, enabled: verb === "enable" };
      print(describe(await broker.call<Rule, object>("exec.rules.update", { ...needId(), ...input }, asSystem())));
      return;
    }
    case "delete":
      await broker.call("exec.rules.remove", needId(), asSystem());
      print(`Deleted rule ${id}`);
      return;
    default:
      throw new Error(`Unknown rule command "${verb}": list, show, enable, disable or delete`);
  }
}

/** `audit verify`: re-walks the audit chain and says whether it holds, or where it breaks. */
export async function auditCommand(broker: ServiceBroker, verb: string, print: Print): Promise<void> {
  if (verb !== "verify") throw new Error(`Unknown audit command "${verb}": verify`);
  const verdict = await broker.call<ChainVerdict, object>("audit.verify", {}, asSystem());
  print(
    verdict.valid
      ? `The audit chain holds: ${verdict.checked} record(s) checked`
      : `The audit chain is broken at ${describeBreak(verdict.brokenAt)}; ${verdict.checked} record(s) before it hold`,
  );
}

/** A command's action: runs `run` with the parsed arguments and prints its error instead of throwing into the REPL. */
function printingErrors(run: (broker: ServiceBroker, args: CommandArgs) => Promise<void>): ReplCustomCommand["action"] {
  return async (broker, argv) => {
    try {
      await run(broker, argv as unknown as CommandArgs);
    } catch (err) {
      console.error((err as Error).message);
    }
  };
}

const idOf = (args: CommandArgs) => args.id as string | undefined;

export const REPL_COMMANDS: ReplCustomCommand[] = [
  {
    command: "dlq <verb> [id]",
    description:
      "Dead letters: dlq list [--status S --channel C --group G --search T], dlq show|replay <id>, dlq discard <id> --reason R",
    options: [
      { option: "--status <status>", description: "PENDING (the default), REPLAYED, RESOLVED or DISCARDED" },
      { option: "--channel <channel>", description: "original channel, e.g. order.created" },
      { option: "--group <group>", description: "consumer group, e.g. exec" },
      { option: "--search <text>", description: "text inside the message or the error" },
      { option: "--reason <text>", description: "why a discarded message is given up on (required by discard)" },
    ],
    action: printingErrors((broker, args) =>
      dlqCommand(broker, String(args.verb), idOf(args), args.options, console.log),
    ),
  },
  {
    command: "saga <verb> [id]",
    description: "Sagas: saga list [--status S] [--stalled], saga show|retry|compensate <id>",
    options: [
      { option: "--status <status>", description: "RUNNING, COMPENSATING, COMPLETED, COMPENSATED or FAILED" },
      {
        option: "--stalled",
        description: "only moving sagas no engine holds: a dead node's, until another takes them over (list)",
      },
    ],
    action: printingErrors((broker, args) =>
      sagaCommand(broker, String(args.verb), idOf(args), args.options, console.log),
    ),
  },
  {
    command: "rule <verb> [id]",
    description: "exec rules: rule list, rule show|enable|disable|delete <id>",
    action: printingErrors((broker, args) => ruleCommand(broker, String(args.verb), idOf(args), console.log)),
  },
  {
    command: "audit <verb>",
    description: "Audit trail: audit verify (re-walk the hash chain)",
    action: printingErrors((broker, args) => auditCommand(broker, String(args.verb), console.log)),
  },
];
