// Which redirect URIs a client app may register for authorization codes (RFC 8252, OAuth 2.0 Security BCP):
// https anywhere; http only to the loopback interface (native apps listening locally); private-use schemes in
// reverse-domain form (`com.example.app:/callback`). Never a fragment, never credentials, never a script scheme.

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/;
export const MAX_REDIRECT_URIS = 32;

/** Why `uri` cannot be registered, or null when it can. Compared later by exact string equality. */
export function redirectUriProblem(uri: unknown): string | null {
  if (typeof uri !== 'string' || uri.length === 0) return 'a redirect URI must be a non-empty string';
  if (uri.length > 2048) return 'a redirect URI must be at most 2048 characters';
  if (/[\u0000-\u0020\u007f]/.test(uri)) return 'a redirect URI must not contain spaces or control characters';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `${uri} is not an absolute URI`;
  }
  if (url.hash || uri.includes('#')) return `${uri} must not contain a fragment`;
  if (url.username || url.password) return `${uri} must not contain credentials`;
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:') return LOOPBACK_HOSTS.has(url.hostname) ? null : `${uri}: http is allowed only for 127.0.0.1, [::1] or localhost`;
  if (PRIVATE_USE_SCHEME.test(url.protocol)) return null;
  return `${uri}: the scheme must be https, http on loopback, or a reverse-domain private-use scheme`;
}

/** Validated, de-duplicated redirect URIs, or the first problem. */
export function parseRedirectUris(input: unknown): string[] | string {
  if (!Array.isArray(input)) return 'redirectUris must be an array of strings';
  if (input.length > MAX_REDIRECT_URIS) return `at most ${MAX_REDIRECT_URIS} redirect URIs`;
  const out: string[] = [];
  for (const u of input) {
    const problem = redirectUriProblem(u);
    if (problem) return problem;
    if (!out.includes(u as string)) out.push(u as string);
  }
  return out;
}
