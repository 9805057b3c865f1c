// Token-endpoint failures in Entra ID's own OAuth2 shape (mde-api.md D21), with real AADSTS codes so that
// client libraries and the humans reading their logs recognise them.

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_resource'
  | 'invalid_scope'
  | 'temporarily_unavailable';

export class EntraError extends Error {
  constructor(
    readonly status: number,
    readonly error: OAuthErrorCode,
    /** The AADSTS number, e.g. 7000215. */
    readonly aadsts: number,
    /** The description's first sentence(s), without the `AADSTSnnn: ` prefix. */
    readonly description: string,
  ) {
    super(`AADSTS${aadsts}: ${description}`);
    this.name = 'EntraError';
  }
}

/** User-supplied text echoed into a description is capped, as one line, so it cannot forge extra fields. */
function echo(value: string): string {
  const oneLine = value.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return oneLine.length > 256 ? `${oneLine.slice(0, 256)}…` : oneLine;
}

export const entraErrors = {
  missingParameter: (name: string) =>
    new EntraError(400, 'invalid_request', 900144, `The request body must contain the following parameter: '${echo(name)}'.`),
  malformedRequest: () => new EntraError(400, 'invalid_request', 9002313, 'Invalid request. Request is malformed or invalid.'),
  bodyTooLarge: () => new EntraError(413, 'invalid_request', 9002313, 'Invalid request. Request is malformed or invalid.'),
  onlyPost: (method: string) =>
    new EntraError(400, 'invalid_request', 900561, `The endpoint only accepts POST requests. Received a ${echo(method)} request.`),
  unknownTenant: (tenant: string) =>
    new EntraError(
      400,
      'invalid_request',
      90002,
      `Tenant '${echo(tenant)}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
    ),
  unsupportedGrant: (grant: string) =>
    new EntraError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${echo(grant)}'.`),
  unknownClient: (clientId: string, tenantName: string) =>
    new EntraError(
      400,
      'unauthorized_client',
      700016,
      `Application with identifier '${echo(clientId)}' was not found in the directory '${echo(tenantName)}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    ),
  badSecret: (clientId: string) =>
    new EntraError(
      401,
      'invalid_client',
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${echo(clientId)}'.`,
    ),
  disabledApp: (clientId: string, name: string) =>
    new EntraError(401, 'invalid_client', 7000112, `Application '${echo(clientId)}'(${echo(name)}) is disabled.`),
  invalidResource: (resource: string, tenantName: string) =>
    new EntraError(
      400,
      'invalid_resource',
      500011,
      `The resource principal named ${echo(resource)} was not found in the tenant named ${echo(tenantName)}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
    ),
  invalidScope: (scope: string) =>
    new EntraError(
      400,
      'invalid_scope',
      70011,
      `The provided value for the input parameter 'scope' is not valid. The scope ${echo(scope)} is not valid.`,
    ),
  conflictingClientAuth: () =>
    new EntraError(
      400,
      'invalid_request',
      9002313,
      'Invalid request. Request is malformed or invalid. The client must use only one authentication method.',
    ),
  // Delegated grants (password, authorization code): issue 6.
  badUserCredentials: () =>
    new EntraError(400, 'invalid_grant', 50126, 'Error validating credentials due to invalid username or password.'),
  accountLocked: () =>
    new EntraError(
      400,
      'invalid_grant',
      50053,
      "The account is locked, you've tried to sign in too many times with an incorrect user ID or password.",
    ),
  userDisabled: () => new EntraError(400, 'invalid_grant', 50057, 'The user account is disabled.'),
  publicClientWithSecret: () =>
    new EntraError(401, 'invalid_client', 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."),
  confidentialClientWithoutSecret: () =>
    new EntraError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
  consentRequired: (clientId: string, name: string) =>
    new EntraError(
      400,
      'invalid_grant',
      65001,
      `The user or administrator has not consented to use the application with ID '${echo(clientId)}' named '${echo(name)}'. Send an interactive authorization request for this user and resource.`,
    ),
  invalidCode: () => new EntraError(400, 'invalid_grant', 70000, "The provided value for the 'code' parameter is not valid."),
  codeRedeemed: () =>
    new EntraError(
      400,
      'invalid_grant',
      54005,
      'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
    ),
  codeExpired: () =>
    new EntraError(
      400,
      'invalid_grant',
      70008,
      'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
    ),
  redirectMismatch: () =>
    new EntraError(
      400,
      'invalid_grant',
      500112,
      'The reply address does not match the reply address provided when requesting Authorization code.',
    ),
  pkceMismatch: () =>
    new EntraError(400, 'invalid_grant', 50148, 'The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.'),
  malformedVerifier: () =>
    new EntraError(400, 'invalid_request', 9002313, 'Invalid request. Request is malformed or invalid. The code_verifier is malformed.'),
  unavailable: () =>
    new EntraError(503, 'temporarily_unavailable', 90033, 'A transient error has occurred. Please try again.'),
};

/** Entra's `yyyy-mm-dd hh:mm:ssZ` */
export function entraTimestamp(at: Date): string {
  return `${at.toISOString().slice(0, 10)} ${at.toISOString().slice(11, 19)}Z`;
}

export interface EntraErrorBody {
  error: OAuthErrorCode;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
  error_uri: string;
}

export function entraErrorBody(err: EntraError, traceId: string, correlationId: string, at: Date): EntraErrorBody {
  const timestamp = entraTimestamp(at);
  return {
    error: err.error,
    error_description: `AADSTS${err.aadsts}: ${err.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [err.aadsts],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${err.aadsts}`,
  };
}
