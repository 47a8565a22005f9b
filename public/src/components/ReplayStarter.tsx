/**
 * Starts a replay operation on a selection of dead letters, as the server's own resource: a dry run first counts
 * exactly the letters it would touch, the operator types that count, and the operation starts at a chosen rate. The
 * console then opens the operation's page, where it can be followed and cancelled (also after a reload).
 */
import { useState } from "react";
import { useNavigate } from "react-router";
import { api } from "../api/client";
import { describeError } from "../api/http";
import type { ReplayOperation } from "../../../contracts/dead-letters";
import { InlineError } from "./States";
import { Button, Field } from "./ui";

export function ReplayStarter(props: {
  /** The filter of the letters to replay and `until` (when the view was loaded): the server freezes it as it starts. */
  selection: Record<string, string>;
  /** What the button says, e.g. "Replay group…". */
  label: string;
}) {
  const navigate = useNavigate();
  const [count, setCount] = useState<number | null>(null);
  const [typed, setTyped] = useState("");
  const [rate, setRate] = useState("10");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function run<T>(step: () => Promise<T>): Promise<T | undefined> {
    setBusy(true);
    setError(null);
    try {
      return await step();
    } catch (err) {
      setError(describeError(err));
      return undefined;
    } finally {
      setBusy(false);
    }
  }

  const preview = () =>
    run(async () => {
      const query = new URLSearchParams(props.selection);
      const dryRun = await api<{ count: number }>("GET", `/api/dlq/replays/preview?${query}`);
      setTyped("");
      setCount(dryRun.count);
    });

  const start = () =>
    run(async () => {
      const body = { ...props.selection, expectedCount: count, ratePerSecond: Number(rate) };
      const operation = await api<ReplayOperation>("POST", "/api/dlq/replays", { body });
      await navigate(`/operations/dead-letters/replays/${operation.id}`);
    });

  if (count === null) {
    return (
      <div>
        <Button disabled={busy} onClick={() => void preview()}>
          {props.label}
        </Button>
        <InlineError message={error} />
      </div>
    );
  }
  return (
    <div role="group" aria-label={`Replay ${count} dead letters`} className="mt-2 flex flex-wrap items-end gap-2">
      {count === 0 ? (
        <p className="text-sm">Nothing to replay: no pending, replayable letter matches.</p>
      ) : (
        <>
          <p className="w-full text-sm">
            The dry run found <strong>{count}</strong> pending letter{count === 1 ? "" : "s"} to replay.
          </p>
          <Field
            label={`Type ${count} to replay them all`}
            inputMode="numeric"
            value={typed}
            onChange={(event) => setTyped(event.target.value)}
          />
          <Field
            label="Letters per second"
            inputMode="numeric"
            value={rate}
            onChange={(event) => setRate(event.target.value)}
          />
          <Button
            disabled={busy || typed.trim() !== String(count) || !/^[1-9][0-9]?$|^100$/.test(rate)}
            onClick={() => void start()}
          >
            Replay {count}
          </Button>
        </>
      )}
      <Button variant="secondary" onClick={() => setCount(null)}>
        Cancel
      </Button>
      <InlineError message={error} />
    </div>
  );
}
