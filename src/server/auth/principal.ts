// The authenticated caller of an /api route, whatever issued its token.

export interface Principal {
  kind: 'app' | 'user';
  tenantId: string;
  /** Application (client) id: appid (v1) / azp (v2). */
  appId: string;
  /** Object id of the app's service principal or of the user. */
  oid: string;
  /** Display name: the app's registered name, or the user's name. */
  name: string;
  /** Application permissions (app tokens). */
  roles: string[];
  /** Delegated permissions (user tokens), from the space-separated `scp`. */
  scopes: string[];
  upn: string | null;
  /** Group ids or names from the token, for mapping external users to roles. */
  groups: string[];
  /** Which issuer vouched for it: 'local' or the external issuer string. */
  issuer: string;
}

/** What MDE writes into `requestor`: the UPN for users, the app's display name for apps (Decision D7). */
export function requestorOf(p: Principal): string {
  return p.kind === 'user' ? (p.upn ?? p.name) : p.name;
}
