import { render, screen } from "@testing-library/react";
import { ApiError, describeError } from "../api/http";
import { visibleItems } from "./nav";
import { Sparkline } from "./Sparkline";
import { ErrorNotice } from "./States";
import { toMinorUnits } from "../pages/Catalog";
import { waterfallRows } from "./Waterfall";
import { newRowsLabel } from "./NewRows";

describe("navigation", () => {
  it("offers a customer only their orders, and an operator the operations pages but not users", () => {
    const customer = (permission: string) => ["orders:create", "orders:read:own"].includes(permission);
    expect(visibleItems(customer).map((item) => item.label)).toEqual(["Orders"]);
    const operator = (permission: string) =>
      ["dashboard:read", "orders:read:any", "dlq:read", "audit:read", "logs:read", "products:write"].includes(
        permission,
      );
    expect(visibleItems(operator).map((item) => item.label)).toEqual([
      "Dashboard",
      "Orders",
      "Dead letters",
      "Audit trail",
      "Logs",
      "Catalog",
    ]);
  });
});

describe("errors in plain words", () => {
  it("names the fields of a validation error", () => {
    const err = new ApiError(
      422,
      "VALIDATION_ERROR",
      "Parameters validation error!",
      [{ field: "price.amount", message: "must be an integer" }],
      "req-1",
    );
    render(<ErrorNotice error={err} />);
    expect(screen.getByRole("alert").textContent).toBe("Please check: price.amount (must be an integer).");
  });

  it("says what a 403, a 5xx and a lost connection mean", () => {
    expect(describeError(new ApiError(403, "FORBIDDEN", "requires users:admin", null, null))).toBe(
      "You do not have permission to do this.",
    );
    expect(describeError(new ApiError(503, "SERVICE_NOT_AVAILABLE", "x", null, "abc"))).toBe(
      "The server could not do this right now (request abc). Try again shortly.",
    );
    expect(describeError(new TypeError("Failed to fetch"))).toBe(
      "The server cannot be reached. Check the connection and try again.",
    );
  });
});

describe("Sparkline", () => {
  it("describes its series for screen readers, gaps included", () => {
    render(<Sparkline values={[1, null, 3, 2]} label="Requests" unit="/s" />);
    expect(screen.getByRole("img").getAttribute("aria-label")).toBe(
      "Requests over the last 4 samples: from 1/s to 3/s",
    );
  });
});

it("reads prices as minor units", () => {
  expect(toMinorUnits("12.5")).toBe(1250);
  expect(toMinorUnits("7")).toBe(700);
  expect(toMinorUnits("1.234")).toBeNull();
  expect(toMinorUnits("abc")).toBeNull();
});

describe("a trace as a waterfall", () => {
  const span = (spanId: string, parentId: string | null, startMs: number, durationMs: number | null) => ({
    traceId: "t1",
    spanId,
    parentId,
    name: spanId,
    type: null,
    service: null,
    nodeId: "n1",
    startedAt: new Date(Date.UTC(2026, 0, 1) + startMs).toISOString(),
    durationMs,
    error: null,
    tags: {},
  });

  it("puts each span under its caller, siblings by start, on the trace's time axis", () => {
    const rows = waterfallRows([
      span("late-child", "root", 60, 40),
      span("root", null, 0, 100),
      span("grandchild", "early-child", 20, 10),
      span("early-child", "root", 10, 30),
    ]);
    expect(rows.map((row) => [row.span.spanId, row.depth, row.offsetMs])).toEqual([
      ["root", 0, 0],
      ["early-child", 1, 10],
      ["grandchild", 2, 20],
      ["late-child", 1, 60],
    ]);
    expect(rows[3]).toMatchObject({ offsetPercent: 60, widthPercent: 40 });
  });

  it("shows a span whose caller was not stored as a root, and one with no duration as a point", () => {
    const rows = waterfallRows([span("orphan", "elsewhere", 50, null), span("root", null, 0, 100)]);
    expect(rows.map((row) => [row.span.spanId, row.depth])).toEqual([
      ["root", 0],
      ["orphan", 0],
    ]);
    expect(rows[1]).toMatchObject({ offsetPercent: 50, widthPercent: 0 });
    expect(waterfallRows([])).toEqual([]);
  });
});

describe("counting new rows", () => {
  it("counts the rows above the first one shown, also when others left the list meanwhile", () => {
    expect(newRowsLabel(["n2", "n1", "a", "b"], ["a", "b", "c"])).toBe("2 new");
    // One arrived as "a" was resolved: the total is unchanged, the new row is still counted.
    expect(newRowsLabel(["n1", "b", "c"], ["a", "b", "c"])).toBe("1 new");
    expect(newRowsLabel(["a", "b"], ["a", "b", "c"])).toBeNull();
    expect(newRowsLabel([], ["a"])).toBeNull();
  });

  it("says more than it compares, or that the list changed, when no row shown is among the newest", () => {
    const many = Array.from({ length: 50 }, (_, i) => `n${i}`);
    expect(newRowsLabel(many, ["a"])).toBe("50+ new");
    expect(newRowsLabel(["x", "y"], ["a", "b"])).toBe("The list has changed");
  });
});
