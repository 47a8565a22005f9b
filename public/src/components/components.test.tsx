import { render, screen } from "@testing-library/react";
import { ApiError, describeError } from "../api/client";
import { visibleItems } from "./nav";
import { Sparkline } from "./Sparkline";
import { ErrorNotice } from "./States";
import { toMinorUnits } from "../pages/Catalog";

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
