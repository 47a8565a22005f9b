/**
 * A logger for in-process nodes whose lines a test reads back: each record with the request id the node's logger
 * would stamp on it (the request context of lib/request-context.ts), as the log store would receive it.
 */
import { Loggers, type LogLevels } from "moleculer";
import { requestLogFields } from "../../lib/request-context";

export interface CapturedRecord {
  level: LogLevels;
  module: string | undefined;
  message: string;
  requestId: string | undefined;
}

type Bindings = Parameters<InstanceType<typeof Loggers.Base>["getLogHandler"]>[0];

export class CaptureLogger extends Loggers.Base<{ level?: LogLevels }> {
  readonly records: CapturedRecord[] = [];

  constructor() {
    super({ level: "info" });
  }

  override getLogHandler(bindings: Bindings) {
    return (level: LogLevels, args: unknown[]) => {
      const message = args.filter((arg) => typeof arg === "string").join(" ");
      this.records.push({ level, module: bindings?.mod, message, requestId: requestLogFields().requestId });
    };
  }
}
