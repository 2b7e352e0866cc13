/**
 * The one error type handlers throw: it carries the spec's errcode and HTTP
 * status, and any extra fields the spec puts beside them (retry_after_ms, ...).
 */
export class MatrixError extends Error {
  constructor(
    readonly statusCode: number,
    readonly errcode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'MatrixError';
  }

  toJSON(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.message, ...this.extra };
  }
}

export const unrecognized = (message = 'Unrecognized request') => new MatrixError(404, 'M_UNRECOGNIZED', message);
export const badJson = (message: string) => new MatrixError(400, 'M_BAD_JSON', message);
export const notJson = (message = 'Content not JSON.') => new MatrixError(400, 'M_NOT_JSON', message);
export const forbidden = (message: string) => new MatrixError(403, 'M_FORBIDDEN', message);
export const missingParam = (message: string) => new MatrixError(400, 'M_MISSING_PARAM', message);
export const invalidParam = (message: string) => new MatrixError(400, 'M_INVALID_PARAM', message);
export const tooLarge = (message = 'Request body too large') => new MatrixError(413, 'M_TOO_LARGE', message);
export const missingToken = () => new MatrixError(401, 'M_MISSING_TOKEN', 'Missing access token');
export const unknownToken = (softLogout = false) => new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Unrecognised access token', softLogout ? { soft_logout: true } : {});
export const limitExceeded = (retryAfterMs: number) => new MatrixError(429, 'M_LIMIT_EXCEEDED', 'Too Many Requests', { retry_after_ms: retryAfterMs });
