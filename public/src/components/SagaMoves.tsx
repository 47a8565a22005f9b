/**
 * What an operator may do to a saga in its state: retry a parked (FAILED) one, or compensate a running one that waits
 * on a participant that never answers. Each asks for a confirmation that says what it does, and goes through the API,
 * which records it in the audit trail. Used by the sagas list and the saga's page.
 */
import { useState } from "react";
import { api } from "../api/client";
import { describeError } from "../api/http";
import { useSession } from "../stores/session";
import { InlineError } from "./States";
import { Button } from "./ui";

const MOVES: Record<string, { label: string; path: string; permission: string; explains: string }> = {
  FAILED: {
    label: "Retry",
    path: "retry",
    permission: "sagas:retry",
    explains: "Runs the action it stopped at again, from its first attempt.",
  },
  RUNNING: {
    label: "Compensate",
    path: "compensate",
    permission: "sagas:compensate",
    explains: "Gives up on it: the steps it has done are undone (stock released, payment refunded).",
  },
};

export function SagaMoves({
  saga,
  onMoved,
}: {
  saga: { id: string; status: string; subjectId: string };
  onMoved(message: string): void;
}) {
  const can = useSession((state) => state.can);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const move = MOVES[saga.status];
  if (!move || !can(move.permission)) return null;
  const variant = move.path === "compensate" ? "danger" : "primary";

  async function confirm() {
    setError(null);
    try {
      await api("POST", `/api/sagas/${saga.id}/${move.path}`);
      setConfirming(false);
      onMoved(`${move.label}: saga of order ${saga.subjectId} done.`);
    } catch (err) {
      setError(describeError(err));
    }
  }

  return (
    <>
      {confirming ? (
        <div role="group" aria-label={`${move.label} the saga of order ${saga.subjectId}`} className="space-y-2">
          <p className="text-sm">{move.explains}</p>
          <div className="flex gap-2">
            <Button variant={variant} onClick={() => void confirm()}>
              {move.label} now
            </Button>
            <Button variant="secondary" onClick={() => setConfirming(false)}>
              Cancel
            </Button>
          </div>
        </div>
      ) : (
        <Button variant={variant} onClick={() => setConfirming(true)}>
          {move.label}…
        </Button>
      )}
      <InlineError message={error} />
    </>
  );
}
