import { Errors } from "moleculer";
import { MAX_JSON_DEPTH, MAX_JSON_VALUES, clientInputProblem } from "../../lib/client-input";
import { DependencyUnavailableError, InvalidValueError, fromDatabaseError } from "../../lib/errors";

describe("clientInputProblem", () => {
  it("accepts ordinary input, paired surrogates (emoji) included", () => {
    expect(clientInputProblem({ name: "Zoë 😀", items: [{ quantity: 2 }], tags: null })).toBeUndefined();
    expect(clientInputProblem(undefined)).toBeUndefined();
  });

  it("names every string and key holding a NUL or an unpaired surrogate, at any depth", () => {
    const problem = clientInputProblem({
      shippingAddress: { name: "Bob\u0000" },
      items: [{ note: "\uD800" }, { note: "ok" }],
      "bad\u0000key": 1,
      tail: "\uDC00x",
    }) as Errors.ValidationError;
    expect(problem).toMatchObject({ code: 422, type: "UNSTORABLE_TEXT" });
    expect((problem.data as { field: string }[]).map((field) => field.field)).toEqual([
      "bad\u0000key",
      "items[0].note",
      "shippingAddress.name",
      "tail",
    ]);
  });

  it("refuses JSON nested deeper than the limit (400) and with more values than the limit (413), without recursing", () => {
    let deep: unknown = "leaf";
    for (let i = 0; i < 100_000; i += 1) deep = [deep];
    expect(clientInputProblem({ schema: deep })).toMatchObject({ code: 400, type: "JSON_TOO_DEEP" });
    let limit: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH - 1; i += 1) limit = [limit];
    expect(clientInputProblem({ schema: limit })).toBeUndefined();
    expect(clientInputProblem({ many: new Array(MAX_JSON_VALUES).fill(0) })).toMatchObject({
      code: 413,
      type: "PAYLOAD_TOO_LARGE",
    });
  });
});

describe("fromDatabaseError", () => {
  const databaseError = (name: string, code: string, message: string) =>
    Object.assign(new Error(message), { name, parent: { code, message } });

  it("makes a value the database cannot hold the client's 422", () => {
    for (const code of ["22003", "22P02", "22021", "54000"]) {
      const mapped = fromDatabaseError(databaseError("SequelizeDatabaseError", code, "bigint out of range"));
      expect(mapped).toBeInstanceOf(InvalidValueError);
      expect(mapped).toMatchObject({ code: 422, type: "INVALID_VALUE", data: { sqlState: code } });
    }
  });

  it("makes an unreachable or overloaded database a retryable 503", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { name: "SequelizeConnectionRefusedError" });
    for (const err of [
      refused,
      databaseError("SequelizeDatabaseError", "57P01", "terminating connection due to administrator command"),
      databaseError("SequelizeDatabaseError", "53300", "too many connections"),
      databaseError("SequelizeDatabaseError", "57014", "canceling statement due to statement timeout"),
      // The server restarted under a query: node-postgres gives no SQLSTATE, only the message.
      Object.assign(new Error("Connection terminated unexpectedly"), {
        name: "SequelizeDatabaseError",
        parent: { message: "Connection terminated unexpectedly" },
      }),
      Object.assign(new Error("Client has encountered a connection error and is not queryable"), {
        name: "SequelizeDatabaseError",
      }),
      // A call that reaches a service whose pool its stopping has closed.
      new Error("ConnectionManager.getConnection was called after the connection manager was closed!"),
    ]) {
      const mapped = fromDatabaseError(err);
      expect(mapped).toBeInstanceOf(DependencyUnavailableError);
      expect(mapped).toMatchObject({ code: 503, retryable: true });
    }
  });

  it("leaves other errors as they are", () => {
    const unique = databaseError("SequelizeUniqueConstraintError", "23505", "duplicate key");
    expect(fromDatabaseError(unique)).toBe(unique);
    const ours = new Errors.MoleculerClientError("x", 400, "X");
    expect(fromDatabaseError(ours)).toBe(ours);
    const bug = new TypeError("undefined is not a function");
    expect(fromDatabaseError(bug)).toBe(bug);
  });
});
