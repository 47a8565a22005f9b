/** Accounts, roles, token pairs and OAuth clients as the auth service answers them: to the gateway, console and tests. */

export type UserStatus = "active" | "disabled";

export interface User {
  id: string;
  email: string;
  displayName: string;
  roles: string[];
  status: UserStatus;
  createdAt: string;
  updatedAt: string;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: "Bearer";
  expiresIn: number;
}

export interface Role {
  name: string;
  description: string;
  permissions: string[];
  builtIn: boolean;
}

export interface OAuthClient {
  clientId: string;
  name: string;
  scopes: string[];
  status: UserStatus;
  createdAt: string;
}

/** Set by the gateway's `/oauth` route from an `Authorization: Basic` header. */
export interface OAuthMeta {
  basicAuth?: { id: string; secret: string };
}
