// The contract between the token endpoint and one OAuth2 grant type. The endpoint parses the request and answers
// in Entra's shape; a grant decides who the caller is and mints the token, throwing EntraError otherwise.
import type { Store, Tenant } from '../../store/store.ts';
import type { ServerConfig } from '../config.ts';
import type { TokenVersion } from './claims.ts';
import type { FormParams } from './formParams.ts';
import type { SecretChecker } from './secrets.ts';
import type { SecretLockout } from './secretLockout.ts';
import type { SigningKeys } from './signingKeys.ts';
import type { UserSignIn } from './userSignIn.ts';

export interface TokenRequest {
  version: TokenVersion;
  params: FormParams;
  /** Client credentials, from the body or from HTTP Basic authentication. */
  client: { id: string | null; secret: string | null };
  /** Origin the request came in on (null when its Host header is unusable). */
  requestOrigin: string | null;
  /** The caller's address and correlation id, for audit records written inside a grant. */
  clientIp: string | null;
  correlationId: string | null;
}

export interface GrantDeps {
  store: Store;
  keys: SigningKeys;
  config: ServerConfig;
  tenant: Tenant;
  secrets: SecretChecker;
  lockout: SecretLockout;
  /** Password checks and lockout for local users (delegated grants). */
  users: UserSignIn;
}

/** What the grant learned about the attempt, filled in as it goes, for the audit record (success or failure). */
export interface AttemptRecord {
  clientId: string | null;
  appName: string | null;
  audience: string | null;
  lockedOut: boolean;
  /** The user a delegated grant is for, as far as it got (the UPN as typed; the oid once known). */
  userUpn?: string | null;
  userOid?: string | null;
}

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
  /** Delegated tokens: the granted `scp`, echoed in the response as Entra does. */
  scope?: string;
}

export type TokenGrant = (req: TokenRequest, deps: GrantDeps, attempt: AttemptRecord) => Promise<IssuedToken>;
