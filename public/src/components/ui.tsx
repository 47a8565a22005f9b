/** Small shared pieces: page headings, status badges, paging, form fields and buttons, with visible focus. */
import type { ButtonHTMLAttributes, InputHTMLAttributes, ReactNode, SelectHTMLAttributes } from "react";

export function PageTitle({ children, actions }: { children: ReactNode; actions?: ReactNode }) {
  return (
    <div className="mb-4 flex flex-wrap items-center gap-3">
      <h1 className="text-xl font-semibold text-slate-900">{children}</h1>
      <div className="ml-auto flex gap-2">{actions}</div>
    </div>
  );
}

export function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <section aria-label={title} className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm">
      <h2 className="mb-3 text-base font-semibold text-slate-900">{title}</h2>
      {children}
    </section>
  );
}

const BADGE: Record<string, string> = {
  COMPLETED: "bg-green-100 text-green-900",
  PAID: "bg-green-100 text-green-900",
  SHIPPED: "bg-green-100 text-green-900",
  RESOLVED: "bg-green-100 text-green-900",
  DONE: "bg-green-100 text-green-900",
  ok: "bg-green-100 text-green-900",
  up: "bg-green-100 text-green-900",
  active: "bg-green-100 text-green-900",
  PENDING: "bg-amber-100 text-amber-900",
  RUNNING: "bg-blue-100 text-blue-900",
  COMPENSATING: "bg-amber-100 text-amber-900",
  REPLAYED: "bg-blue-100 text-blue-900",
  SENT: "bg-blue-100 text-blue-900",
  CANCELLED: "bg-slate-200 text-slate-900",
  DISCARDED: "bg-slate-200 text-slate-900",
  SKIPPED: "bg-slate-200 text-slate-900",
  left: "bg-slate-200 text-slate-900",
  disabled: "bg-slate-200 text-slate-900",
  COMPENSATED: "bg-orange-100 text-orange-900",
  FAILED: "bg-red-100 text-red-900",
  FIRING: "bg-red-100 text-red-900",
  degraded: "bg-red-100 text-red-900",
  lost: "bg-red-100 text-red-900",
};

export function Badge({ value }: { value: string }) {
  return (
    <span
      className={`inline-block rounded px-2 py-0.5 text-xs font-medium ${BADGE[value] ?? "bg-slate-100 text-slate-900"}`}
    >
      {value}
    </span>
  );
}

export function Pager({ page, totalPages, onPage }: { page: number; totalPages: number; onPage(page: number): void }) {
  if (totalPages <= 1) return null;
  return (
    <nav aria-label="Pages" className="mt-3 flex items-center gap-2 text-sm">
      <Button variant="secondary" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        Previous
      </Button>
      <span>
        Page {page} of {totalPages}
      </span>
      <Button variant="secondary" disabled={page >= totalPages} onClick={() => onPage(page + 1)}>
        Next
      </Button>
    </nav>
  );
}

export function Button({
  variant = "primary",
  className = "",
  ...props
}: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: "primary" | "secondary" | "danger" }) {
  const look = {
    primary: "bg-blue-700 text-white hover:bg-blue-800 disabled:bg-slate-400",
    secondary: "border border-slate-400 bg-white text-slate-900 hover:bg-slate-100 disabled:text-slate-400",
    danger: "bg-red-700 text-white hover:bg-red-800 disabled:bg-slate-400",
  }[variant];
  return <button type="button" {...props} className={`rounded px-3 py-1.5 text-sm font-medium ${look} ${className}`} />;
}

export function Field({ label, ...props }: InputHTMLAttributes<HTMLInputElement> & { label: string }) {
  return (
    <label className="flex flex-col gap-1 text-sm text-slate-800">
      {label}
      <input {...props} className="rounded border border-slate-400 px-2 py-1.5 text-slate-900" />
    </label>
  );
}

export function Select({
  label,
  options,
  ...props
}: SelectHTMLAttributes<HTMLSelectElement> & { label: string; options: { value: string; label: string }[] }) {
  return (
    <label className="flex flex-col gap-1 text-sm text-slate-800">
      {label}
      <select {...props} className="rounded border border-slate-400 bg-white px-2 py-1.5 text-slate-900">
        {options.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
    </label>
  );
}

export { formatTime } from "../stores/timeZone";
export const formatMoney = (money: { amount: number; currency: string }) =>
  `${(money.amount / 100).toFixed(2)} ${money.currency}`;

/**
 * Table wrapper: scrolls sideways on a narrow window instead of squeezing columns. The scrolling region is focusable
 * and named, so it can be scrolled from the keyboard (axe: scrollable-region-focusable).
 */
export function Table({ caption, head, children }: { caption: string; head: string[]; children: ReactNode }) {
  return (
    <div className="overflow-x-auto" role="region" aria-label={caption} tabIndex={0}>
      <table className="min-w-full text-left text-sm">
        <caption className="sr-only">{caption}</caption>
        <thead className="border-b border-slate-300 text-slate-700">
          <tr>
            {head.map((cell) => (
              <th key={cell} scope="col" className="px-2 py-2 font-medium">
                {cell}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-200">{children}</tbody>
      </table>
    </div>
  );
}
