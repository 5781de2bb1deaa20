import * as apigw from 'aws-cdk-lib/aws-apigateway';

/** One of API Gateway's own rejections, answered in the shape of docs/formats.md#whole-request-errors. */
export interface GatewayErrorMapping {
  readonly responseType: apigw.ResponseType;
  /** HTTP status; absent: API Gateway's own. */
  readonly statusCode?: string;
  /** The `__type` of the body. */
  readonly errorType: string;
  /** A fixed message; absent: API Gateway's `$context.error.messageString`. */
  readonly message?: string;
}

/**
 * How API Gateway's own rejections answer: `{"__type":"<Code>","message":"…"}` (and the same
 * code in `x-amzn-ErrorType`, where AWS SDKs look first). Exported so the README table is
 * generated from it rather than copied.
 */
export const GATEWAY_ERROR_MAPPINGS: readonly GatewayErrorMapping[] = [
  {
    responseType: apigw.ResponseType.BAD_REQUEST_BODY,
    statusCode: '400',
    errorType: 'ValidationException',
    message: 'The request body must be a JSON object: {"auditEvents":[{"id":"…","eventData":"…"}]}',
  },
  {
    responseType: apigw.ResponseType.BAD_REQUEST_PARAMETERS,
    statusCode: '400',
    errorType: 'ValidationException',
  },
  {
    responseType: apigw.ResponseType.REQUEST_TOO_LARGE,
    statusCode: '400',
    errorType: 'ValidationException',
    message: 'The request body is too large: at most 1,048,576 bytes per request',
  },
  {
    responseType: apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE,
    statusCode: '415',
    errorType: 'UnsupportedMediaTypeException',
  },
  {
    responseType: apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
    statusCode: '403',
    errorType: 'AccessDeniedException',
  },
  {
    responseType: apigw.ResponseType.INVALID_SIGNATURE,
    statusCode: '403',
    errorType: 'AccessDeniedException',
  },
  {
    responseType: apigw.ResponseType.EXPIRED_TOKEN,
    statusCode: '403',
    errorType: 'AccessDeniedException',
  },
  {
    responseType: apigw.ResponseType.UNAUTHORIZED,
    statusCode: '403',
    errorType: 'AccessDeniedException',
  },
  {
    responseType: apigw.ResponseType.ACCESS_DENIED,
    statusCode: '403',
    errorType: 'AccessDeniedException',
  },
  {
    responseType: apigw.ResponseType.WAF_FILTERED,
    statusCode: '403',
    errorType: 'AccessDeniedException',
  },
  {
    responseType: apigw.ResponseType.RESOURCE_NOT_FOUND,
    statusCode: '404',
    errorType: 'UnknownOperationException',
  },
  {
    responseType: apigw.ResponseType.THROTTLED,
    statusCode: '429',
    errorType: 'ThrottlingException',
  },
  {
    responseType: apigw.ResponseType.QUOTA_EXCEEDED,
    statusCode: '429',
    errorType: 'ThrottlingException',
  },
  { responseType: apigw.ResponseType.DEFAULT_4XX, errorType: 'BadRequestException' },
  { responseType: apigw.ResponseType.DEFAULT_5XX, errorType: 'InternalFailure' },
];

/** The JSON body template of a gateway response: simple substitution only, no VTL. */
function errorTemplate(mapping: GatewayErrorMapping): string {
  const type = JSON.stringify(mapping.errorType);
  // $context.error.messageString is already a quoted JSON string.
  const message =
    mapping.message === undefined
      ? '$context.error.messageString'
      : JSON.stringify(mapping.message);
  return `{"__type":${type},"message":${message}}`;
}

/**
 * Adds one gateway response per {@link GATEWAY_ERROR_MAPPINGS} entry to `api`, with id
 * `<PascalResponseType>Response` (construct IDs are part of the contract).
 */
export function addGatewayErrorResponses(api: apigw.RestApi): void {
  for (const mapping of GATEWAY_ERROR_MAPPINGS) {
    api.addGatewayResponse(`${pascal(mapping.responseType.responseType)}Response`, {
      type: mapping.responseType,
      ...(mapping.statusCode ? { statusCode: mapping.statusCode } : {}),
      responseHeaders: { 'x-amzn-ErrorType': `'${mapping.errorType}'` },
      templates: { 'application/json': errorTemplate(mapping) },
    });
  }
}

/** BAD_REQUEST_BODY → BadRequestBody (construct IDs are part of the contract). */
function pascal(screaming: string): string {
  return screaming
    .toLowerCase()
    .split('_')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}
