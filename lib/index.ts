export * from './audit-trail';
export * from './event-stream';
export * from './ingest-api';
export * from './log-archive';
export * from './log-packager';
export * from './opentrail-stack';
export * from './app-config';
export { OpentrailConfigError, type OpentrailConfigErrorCode } from './private/errors';
export type { OpentrailFunction, OpentrailFunctionProps } from './private/opentrail-function';
