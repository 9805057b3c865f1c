// Which resource / scope values a token may be requested for and which `aud` values the API accepts
// (mde-api.md §7.1 "accepted audiences", D20): the known MDE audiences, and any URL that names this server.

/** The WindowsDefenderATP resource application (Entra "APIs my organization uses"). */
export const WINDOWS_DEFENDER_ATP_APP_ID = 'fc780465-2017-40d4-a0c5-307022471b92';

const KNOWN_MDE_AUDIENCES: readonly string[] = [
  'https://api.securitycenter.microsoft.com',
  'https://api.securitycenter.windows.com',
  'https://api.security.microsoft.com',
  'https://securitycenter.onmicrosoft.com/windowsatpservice',
  'https://securitycenter.onmicrosoft.us/windowsatpservice',
  // 2021 "closer to your geo" bases
  ...['us', 'eu', 'uk', 'au'].map((r) => `https://api-${r}.securitycenter.microsoft.com`),
  // 2024 regional bases
  ...['us', 'eu', 'uk', 'au', 'swa', 'ina'].map((r) => `https://${r}.api.security.microsoft.com`),
  // msticpy's Microsoft 365 Defender mapping
  ...['us', 'eu', 'uk'].map((r) => `https://api-${r}.security.microsoft.com`),
  // US Government (GCC, GCC High / DoD)
  'https://api-gcc.securitycenter.microsoft.us',
  'https://api-gov.securitycenter.microsoft.us',
  WINDOWS_DEFENDER_ATP_APP_ID,
  `api://${WINDOWS_DEFENDER_ATP_APP_ID}`,
];

const DEFAULT_SUFFIX = '/.default';

/**
 * Canonical comparison form of a resource or scope: `/.default` and trailing slashes dropped, scheme and host
 * lower-cased, default ports dropped, path compared case-insensitively (Entra matches identifier URIs that way).
 * Returns null for values that cannot be an audience (queries, fragments, credentials, blanks).
 */
export function normalizeAudience(value: string): string | null {
  let v = value.trim();
  if (v.length === 0 || v.length > 2048) return null;
  if (v.toLowerCase().endsWith(DEFAULT_SUFFIX)) v = v.slice(0, -DEFAULT_SUFFIX.length);
  v = v.replace(/\/+$/, '');
  if (v.length === 0) return null;
  if (!v.includes('://')) return /^[\x21-\x7e]+$/.test(v) ? v.toLowerCase() : null;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return null;
  }
  if (url.search || url.hash || url.username || url.password) return null;
  const path = url.pathname.replace(/\/+$/, '').toLowerCase();
  if (url.protocol === 'http:' || url.protocol === 'https:') return `${url.protocol}//${url.host}${path}`;
  // Non-special schemes (api://…) keep their host case in WHATWG URLs; fold it like Entra does.
  return `${url.protocol}//${url.host.toLowerCase()}${path}`;
}

const KNOWN = new Set(KNOWN_MDE_AUDIENCES.map((a) => normalizeAudience(a)!));

/** `scheme://host[:port]` of an http(s) URL (default ports dropped, host lower-cased), or null. */
export function originOf(value: string): string | null {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return `${url.protocol}//${url.host}`;
  } catch {
    return null;
  }
}

export function isKnownMdeAudience(value: string): boolean {
  const n = normalizeAudience(value);
  return n !== null && KNOWN.has(n);
}

export interface AudienceContext {
  /** The origin the request came in on, e.g. `http://127.0.0.1:8080`; null when it must not count. */
  requestOrigin: string | null;
  /** config.publicUrl */
  publicUrl: string | null;
}

export type AudienceMatch =
  /** A known MDE audience or the configured public URL: valid wherever the request arrives. */
  | 'static'
  /** A URL naming the origin this request came in on. */
  | 'origin'
  | null;

/** How `value` qualifies as an audience of this server, if at all. */
export function matchAudience(value: string, ctx: AudienceContext): AudienceMatch {
  const n = normalizeAudience(value);
  if (n === null) return null;
  if (KNOWN.has(n)) return 'static';
  const origin = originOf(n);
  if (origin === null) return null;
  if (ctx.publicUrl && originOf(ctx.publicUrl) === origin) return 'static';
  if (ctx.requestOrigin && originOf(ctx.requestOrigin) === origin) return 'origin';
  return null;
}

export function isAcceptedAudience(value: string, ctx: AudienceContext): boolean {
  return matchAudience(value, ctx) !== null;
}

/** OpenID Connect scopes that may ride along in a v2 `scope` without naming a resource. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);

export type ScopeResource = { ok: true; resource: string } | { ok: false; reason: 'none' | 'several' };

/**
 * The resource a v2 `scope` parameter asks for. It may hold several space-separated values
 * (`https://…/.default offline_access`); the `.default` one decides. Without any `.default`, a single
 * non-OIDC value is taken as the resource (the reference accepts the suffix as optional).
 */
export function resourceFromScope(scope: string): ScopeResource {
  const values = scope.split(/\s+/).filter((s) => s.length > 0);
  const defaults = values.filter((s) => s.toLowerCase().endsWith(DEFAULT_SUFFIX));
  if (defaults.length === 1) return { ok: true, resource: defaults[0]! };
  if (defaults.length > 1) return { ok: false, reason: 'several' };
  const resources = values.filter((s) => !OIDC_SCOPES.has(s.toLowerCase()));
  if (resources.length === 1) return { ok: true, resource: resources[0]! };
  return { ok: false, reason: resources.length === 0 ? 'none' : 'several' };
}

/** The `aud` a minted token carries: the requested value as given, minus `/.default`. */
export function audienceClaimFor(requested: string): string {
  const v = requested.trim();
  return v.toLowerCase().endsWith(DEFAULT_SUFFIX) ? v.slice(0, -DEFAULT_SUFFIX.length) : v;
}
