// Domain errors carry the MDE error code and HTTP status, so every layer can fail in the wire's own terms.

export type MdeErrorCode =
  | 'BadRequest'
  | 'ODataError'
  | 'InvalidInput'
  | 'InvalidRequestBody'
  | 'InvalidHashValue'
  | 'InvalidIpAddress'
  | 'MaximumBatchSizeExceeded'
  | 'MissingRequiredParameter'
  | 'OsPlatformNotSupported'
  | 'ClientVersionNotSupported'
  | 'ActiveRequestAlreadyExists'
  | 'Unauthorized'
  | 'Forbidden'
  | 'DisabledFeature'
  | 'DisallowedOperation'
  | 'NotFound'
  | 'ResourceNotFound'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'TooManyRequests'
  | 'InternalServerError';

export class MdeError extends Error {
  constructor(
    readonly status: number,
    readonly code: MdeErrorCode,
    message: string,
    /** Extra headers the response must carry (Retry-After, WWW-Authenticate). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'MdeError';
  }
}

/** The OData query-parser failure, which the live service answers in its own shape (empty code, details[]). */
export class ODataQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ODataQueryError';
  }
}

export const badRequest = (message: string) => new MdeError(400, 'BadRequest', message);
export const notFound = (message: string) => new MdeError(404, 'ResourceNotFound', message);

export const ACTION_IN_PROGRESS = 'Action is already in progress';
export const activeRequestAlreadyExists = () => new MdeError(400, 'ActiveRequestAlreadyExists', ACTION_IN_PROGRESS);
