/** flowtap's modules, for tests and for embedding. The CLI is dist/cli.js. */
export * from './address';
export * from './clock';
export * from './config';
export * from './decode';
export * from './dns/lookup';
export * from './env';
export * from './export/console';
export * from './export/observed';
export * from './export/provider';
export * from './export/stats';
export * as layout from './layout';
export * from './log';
export * from './pipeline';
export * from './probe';
export * from './record';
export * from './resource';
export * as semconv from './semconv';
