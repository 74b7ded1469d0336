/** flowtap's modules, for tests and for embedding. The CLI is dist/cli.js. */
export * from './kernel/address';
export * from './kernel/clock';
export * from './config/config';
export * from './kernel/decode';
export * from './enrich/dns/lookup';
export * from './config/env';
export * from './export/console/console';
export * from './export/observed';
export * from './export/provider';
export * from './export/stats';
export * as layout from './kernel/layout';
export * from './runtime/log';
export * from './pipeline';
export * from './kernel/probe';
export * from './record/record';
export * from './record/resource';
export * as schema from './record/schema';
export * as semconv from './record/semconv';
