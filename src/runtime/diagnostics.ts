/** The OpenTelemetry SDK's own diagnostics, routed to flowtap's log. */
import { DiagLogLevel, diag, type DiagLogger } from '@opentelemetry/api';
import { setGlobalErrorHandler } from '@opentelemetry/core';
import type { Log, LogLevel } from './log';

/**
 * SDK diagnostics go to flowtap's log. Debug-level diag would dump whole
 * export requests, so the SDK is never more verbose than info.
 */
export function routeDiagnostics(log: Log, level: LogLevel): void {
  const forward =
    (to: (msg: string, fields?: Record<string, unknown>) => void) =>
    (message: string, ...args: unknown[]): void =>
      to(message, args.length > 0 ? { source: 'opentelemetry', details: args } : { source: 'opentelemetry' });
  const logger: DiagLogger = {
    error: forward(log.error),
    warn: forward(log.warn),
    info: forward(log.info),
    debug: forward(log.debug),
    verbose: forward(log.debug),
  };
  const diagLevel = { debug: DiagLogLevel.INFO, info: DiagLogLevel.WARN, warn: DiagLogLevel.WARN, error: DiagLogLevel.ERROR }[level];
  diag.setLogger(logger, { logLevel: diagLevel, suppressOverrideMessage: true });
  // The batch processor reports each failed export here; ExportStats already
  // warns about them (throttled), so these stay at debug.
  setGlobalErrorHandler((e) => log.debug('opentelemetry error', { error: e }));
}
