// The contract between the token endpoint and one OAuth2 grant type. The endpoint parses the request and answers
// in Entra's shape; a grant decides who the caller is and mints the token, throwing EntraError otherwise.
import type { Store, Tenant } from '../../store/store.ts';
import type { ServerConfig } from '../config.ts';
import type { TokenVersion } from './claims.ts';
import type { FormParams } from './formParams.ts';
import type { SecretChecker } from './secrets.ts';
import type { SecretLockout } from './secretLockout.ts';
import type { SigningKeys } from './signingKeys.ts';

export interface TokenRequest {
  version: TokenVersion;
  params: FormParams;
  /** Client credentials, from the body or from HTTP Basic authentication. */
  client: { id: string | null; secret: string | null };
  /** Origin the request came in on (null when its Host header is unusable). */
  requestOrigin: string | null;
}

export interface GrantDeps {
  store: Store;
  keys: SigningKeys;
  config: ServerConfig;
  tenant: Tenant;
  secrets: SecretChecker;
  lockout: SecretLockout;
}

/** What the grant learned about the attempt, filled in as it goes, for the audit record (success or failure). */
export interface AttemptRecord {
  clientId: string | null;
  appName: string | null;
  audience: string | null;
  lockedOut: boolean;
}

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
}

export type TokenGrant = (req: TokenRequest, deps: GrantDeps, attempt: AttemptRecord) => Promise<IssuedToken>;
