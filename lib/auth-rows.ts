/** The rows of the auth service's tables, and the answers (contracts/auth.ts) and revocations made from them. */
import type { OAuthClient, User, UserStatus } from "../contracts/auth";
import { subjectOf, type Revocation } from "./revocation";
import type { PublicJwk } from "./signing-keys";

export interface UserRow {
  id: string;
  email: string;
  display_name: string;
  password_hash: string;
  roles: string[];
  status: UserStatus;
  must_change_password: boolean;
  token_generation: number;
  tokens_revoked_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface KeyRow {
  kid: string;
  private_key: string;
  public_jwk: PublicJwk;
  created_at: Date;
  retired_at: Date | null;
}

export interface ClientRow {
  client_id: string;
  name: string;
  secret_hash: string;
  scopes: string[];
  status: UserStatus;
  token_generation: number;
  tokens_revoked_at: Date | null;
  created_at: Date;
}

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    displayName: row.display_name,
    roles: row.roles,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export function revocationOf(type: "user" | "client", row: UserRow | ClientRow): Revocation {
  return {
    subject: subjectOf(type, "id" in row ? row.id : row.client_id),
    minGeneration: row.token_generation,
    revokedAt: (row.tokens_revoked_at ?? new Date()).toISOString(),
  };
}

export function toClient(row: ClientRow): OAuthClient {
  return {
    clientId: row.client_id,
    name: row.name,
    scopes: row.scopes,
    status: row.status,
    createdAt: row.created_at.toISOString(),
  };
}
