import { loadConfig } from "../../lib/config";
import { corsOptions, securityHeaders } from "../../lib/gateway-headers";

/** A gateway-only production node: it needs no secret of its own. */
const production = { NODE_ENV: "production", DATABASE_URL: "postgres://db/postgres", SERVICES: "api" };

it("insists on HTTPS in production only", () => {
  expect(securityHeaders(loadConfig(production))).toMatchObject({
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Frame-Options": "DENY",
  });
  expect(securityHeaders(loadConfig({}))).not.toHaveProperty("Strict-Transport-Security");
});

it("allows the origins CORS_ORIGINS lists, any with *, and none without it", () => {
  const origins = corsOptions(loadConfig({ CORS_ORIGINS: "https://a.example,https://b.example" }));
  expect(origins?.origin).toEqual(["https://a.example", "https://b.example"]);
  expect(corsOptions(loadConfig({ CORS_ORIGINS: "*" }))?.origin).toBe("*");
  expect(corsOptions(loadConfig({}))).toBeUndefined();
});
