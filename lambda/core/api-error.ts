/**
 * An error an API operation answers with: HTTP status and `{"__type": code, "message"}`, the
 * AWS JSON protocol's error shape (docs/formats.md#whole-request-errors, docs/formats.md#lookupevents).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode = 400,
  ) {
    super(message);
  }
}
