import { loadConfig } from "../../lib/config";
import { databaseName, databaseUrlFor, quoteIdentifier, redactUrl } from "../../lib/database";

describe("databaseUrlFor", () => {
  it("names each service's database after the service on the shared server", () => {
    const cfg = loadConfig({ DATABASE_URL: "postgres://app:secret@db:5432/postgres?sslmode=require" });
    expect(databaseUrlFor("products", cfg)).toBe("postgres://app:secret@db:5432/products?sslmode=require");
    expect(databaseName(databaseUrlFor("orders", cfg))).toBe("orders");
  });

  it("puts the configured prefix in front of the name", () => {
    const cfg = loadConfig({ DATABASE_URL: "postgres://db/postgres", DATABASE_NAME_PREFIX: "staging_" });
    expect(databaseName(databaseUrlFor("products", cfg))).toBe("staging_products");
  });

  it("uses a service's own URL as given", () => {
    const cfg = loadConfig({ DATABASE_URL: "postgres://db/postgres", ORDERS_DATABASE_URL: "postgres://other/o2" });
    expect(databaseUrlFor("orders", cfg)).toBe("postgres://other/o2");
  });

  it("fails clearly when no database is configured", () => {
    expect(() => databaseUrlFor("products", loadConfig({}))).toThrow(/set DATABASE_URL/);
  });
});

describe("helpers", () => {
  it("never shows a password", () => {
    expect(redactUrl("postgres://app:s3cret@db:5432/products")).toBe("postgres://app:***@db:5432/products");
    expect(redactUrl("postgres://db:5432/products")).toBe("postgres://db:5432/products");
  });

  it("quotes identifiers", () => {
    expect(quoteIdentifier('we"ird')).toBe('"we""ird"');
  });
});
