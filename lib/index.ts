export * from './audit-trail';
export * from './digest-signer';
export * from './digest-signer-options';
export * from './event-fanout';
export * from './event-history';
export * from './event-stream';
export * from './ingest-api';
export * from './ingest-api-options';
export * from './insights';
export * from './log-archive';
export * from './log-packager';
export * from './monitoring';
export * from './opentrail-stack';
export * from './app-config';
export { OpentrailConfigError, type OpentrailConfigErrorCode } from './private/errors';
export type { OpentrailFunction, OpentrailFunctionProps } from './private/opentrail-function';
// Pure and SDK-free: what a fan-out consumer drops repeats by (docs/guarantees.md#fan-out-and-history).
export { canonicalJson, opentrailEventKey, type EventWithDetail } from '../lambda/core/event-key';
export type { ProtectionOptions } from './private/protection';
