import { Errors } from "moleculer";
import { OAuthError, ServiceUnavailableError } from "../../lib/errors";
import { oauthErrorAnswer } from "../../lib/oauth-errors";

describe("the token endpoint's error answers (RFC 6749 §5.2)", () => {
  it("keep an OAuth error's code, description and status", () => {
    expect(oauthErrorAnswer(new OAuthError("invalid_client", "Unknown client"))).toEqual({
      status: 401,
      body: { error: "invalid_client", error_description: "Unknown client" },
    });
    expect(oauthErrorAnswer(new OAuthError("unsupported_grant_type", "Only client_credentials")).status).toBe(400);
  });

  it("make a validation error invalid_request, 400, with its message", () => {
    const invalid = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", []);
    expect(oauthErrorAnswer(invalid)).toEqual({
      status: 400,
      body: { error: "invalid_request", error_description: "Parameters validation error!" },
    });
  });

  it("make anything else server_error, which says nothing of the cause, with its status or 500", () => {
    const server = { error: "server_error", error_description: "The token endpoint failed" };
    expect(oauthErrorAnswer(new Error("connection reset by peer"))).toEqual({ status: 500, body: server });
    expect(oauthErrorAnswer(new ServiceUnavailableError({ service: "auth" }))).toEqual({ status: 503, body: server });
  });
});
