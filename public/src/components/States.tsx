/** The states every list and view has: loading, empty, failed; and the notices actions leave behind. */
import type { ReactNode } from "react";
import { describeError } from "../api/http";

export function Loading({ what }: { what: string }) {
  return (
    <p role="status" aria-live="polite" className="p-4 text-sm text-slate-600">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <p className="rounded border border-dashed border-slate-300 p-6 text-center text-sm text-slate-600">{children}</p>
  );
}

export function ErrorNotice({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  return (
    <div
      role="alert"
      className="flex items-center gap-3 rounded border border-red-300 bg-red-50 p-3 text-sm text-red-800"
    >
      <span>{describeError(error)}</span>
      {onRetry && (
        <button
          type="button"
          onClick={onRetry}
          className="ml-auto rounded border border-red-400 px-2 py-1 hover:bg-red-100"
        >
          Try again
        </button>
      )}
    </div>
  );
}

export function Notice({ children, tone = "info" }: { children: ReactNode; tone?: "info" | "success" }) {
  const colors =
    tone === "success" ? "border-green-300 bg-green-50 text-green-900" : "border-blue-300 bg-blue-50 text-blue-900";
  return (
    <p role="status" className={`rounded border p-3 text-sm ${colors}`}>
      {children}
    </p>
  );
}

/** Loading, failed, empty or the content, in that order. */
export function Guarded<T>({
  loaded,
  what,
  empty,
  children,
}: {
  loaded: { data: T | undefined; error: unknown; loading: boolean; reload(): void };
  what: string;
  empty?: (data: T) => ReactNode | null;
  children: (data: T) => ReactNode;
}) {
  if (loaded.error) return <ErrorNotice error={loaded.error} onRetry={loaded.reload} />;
  if (loaded.data === undefined) return <Loading what={what} />;
  const emptiness = empty?.(loaded.data);
  if (emptiness) return <Empty>{emptiness}</Empty>;
  return <>{children(loaded.data)}</>;
}

/** What went wrong with the user's last action, next to where they did it. */
export function InlineError({ message, className = "" }: { message: string | null; className?: string }) {
  if (!message) return null;
  return (
    <p role="alert" className={`text-sm text-red-800 ${className}`}>
      {message}
    </p>
  );
}
