import { compatibilityProblems, schemaDefinitionProblems } from "../../lib/schema-compat";
import { EVENT_SCHEMAS } from "../../lib/event-types";

const v1 = {
  id: { type: "uuid" },
  status: { type: "enum", values: ["NEW", "DONE"] },
  note: { type: "string", optional: true },
  total: { type: "object", props: { amount: "number", currency: { type: "string", pattern: "^[A-Z]{3}$" } } },
  lines: { type: "array", items: { type: "object", props: { sku: "string" } } },
  $$strict: true,
};

const kinds = (problems: { field: string; type: string }[]) => problems.map((p) => `${p.field} ${p.type}`);

describe("compatibility", () => {
  it("accepts the same schema, added optional fields, and added enum values", () => {
    expect(compatibilityProblems(v1, v1)).toEqual([]);
    const v2 = {
      ...v1,
      status: { type: "enum", values: ["NEW", "DONE", "LOST"] },
      channel: "string|optional",
      total: { ...v1.total, props: { ...v1.total.props, tax: { type: "number", optional: true } } },
    };
    expect(compatibilityProblems(v1, v2)).toEqual([]);
  });

  it("names removed fields, changed types, new required fields and narrowed enums, nested ones too", () => {
    const v2 = {
      id: { type: "string" },
      status: { type: "enum", values: ["NEW"] },
      note: { type: "string" },
      total: { type: "object", props: { amount: "number" } },
      lines: { type: "array", items: { type: "object", props: { sku: "number" } } },
      reason: { type: "string" },
    };
    expect(kinds(compatibilityProblems(v1, v2))).toEqual([
      "payload.id typeChanged",
      "payload.status valuesRemoved",
      "payload.note becameRequired",
      "payload.total.currency fieldRemoved",
      "payload.lines[].sku typeChanged",
      "payload.reason requiredFieldAdded",
    ]);
  });
});

describe("definitions", () => {
  it("accepts the platform's catalogue as it is registered", () => {
    for (const schema of EVENT_SCHEMAS) expect(schemaDefinitionProblems(schema.payload)).toEqual([]);
  });

  it("refuses a rule fastest-validator does not know, a non-object, and values JSON cannot carry", () => {
    expect(kinds(schemaDefinitionProblems({ a: { type: "nope" } }))).toEqual(["payload invalidSchema"]);
    expect(kinds(schemaDefinitionProblems(["string"]))).toEqual(["payload invalidSchema"]);
    expect(kinds(schemaDefinitionProblems({ a: { type: "string", pattern: /x/ } }))).toEqual(["payload invalidSchema"]);
  });
});
