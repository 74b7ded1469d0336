/**
 * Health endpoints (--health-address), off unless asked for:
 *   GET /healthz  200 while the programs are attached and the ring-buffer
 *                 reader runs; 503 once the reader failed.
 *   GET /readyz   200 once flowtap logged "ready", while records can be
 *                 exported: 503 while starting or stopping, after the reader
 *                 failed, while the watched cgroup is gone (until the
 *                 programs are attached to the cgroup at its path again),
 *                 or when for longer than
 *                 --ready-export-failure-seconds every export has failed
 *                 or an export has waited for its answer.
 * Bodies are JSON objects with a `status` field. The decision is the pure
 * function evaluateHealth; HealthServer only serves it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the endpoints decide from, read on each request. */
export interface HealthInputs {
  /** The "ready" line was logged. */
  ready: boolean;
  /** SIGTERM/SIGINT received. */
  stopping: boolean;
  /** The programs are attached (false once closed). */
  attached: boolean;
  /** The ring-buffer reader's failure, if it failed. */
  pollError?: string;
  /** Since when every record export failed (undefined while the last one succeeded). */
  exportFailingSinceMs?: number;
  /** When an export last succeeded. */
  lastExportSuccessMs?: number;
  /** Since when the watched cgroup has been gone (undefined while it stands and the programs are attached to it). */
  cgroupRemovedSinceMs?: number;
  /** Since when the oldest export still waiting for its answer was sent (undefined: none is). */
  exportUnansweredSinceMs?: number;
}

export interface HealthAnswer {
  ok: boolean;
  body: Record<string, unknown>;
}

/** /healthz and /readyz for `inputs` at `nowMs`. */
export function evaluateHealth(inputs: HealthInputs, nowMs: number, exportFailureMillis: number): { healthz: HealthAnswer; readyz: HealthAnswer } {
  const lastSuccess = inputs.lastExportSuccessMs === undefined ? undefined : new Date(inputs.lastExportSuccessMs).toISOString();
  const live = inputs.pollError === undefined && (inputs.attached || inputs.stopping);
  const healthz: HealthAnswer = {
    ok: live,
    body: {
      status: live ? 'ok' : 'failing',
      probe: inputs.attached ? 'attached' : 'detached',
      reader: inputs.pollError === undefined ? 'ok' : 'failed',
      ...(inputs.pollError === undefined ? {} : { error: inputs.pollError }),
    },
  };
  // A stall starts at the first failure in a row or at the oldest request
  // still unanswered, whichever came first: an endpoint that accepts and
  // never answers counts from its first request, not from that request's
  // deadline.
  const failing = inputs.exportFailingSinceMs;
  const unanswered = inputs.exportUnansweredSinceMs;
  const stallSinceMs = failing === undefined ? unanswered : unanswered === undefined ? failing : Math.min(failing, unanswered);
  const failingMs = stallSinceMs === undefined ? 0 : Math.max(0, nowMs - stallSinceMs);
  let reason: string | undefined;
  if (inputs.pollError !== undefined) reason = 'ring-buffer reader failed';
  else if (inputs.stopping) reason = 'stopping';
  else if (!inputs.ready) reason = 'starting';
  else if (inputs.cgroupRemovedSinceMs !== undefined) reason = 'watched cgroup removed';
  else if (stallSinceMs !== undefined && failingMs > exportFailureMillis) {
    reason = failing !== undefined && failing === stallSinceMs ? 'exports failing' : 'exports unanswered';
  }
  const readyz: HealthAnswer = {
    ok: reason === undefined,
    body: {
      status: reason === undefined ? 'ready' : 'not ready',
      ...(reason === undefined ? {} : { reason }),
      exportFailingSeconds: Math.floor(failingMs / 1000),
      ...(lastSuccess === undefined ? {} : { lastExportSuccess: lastSuccess }),
    },
  };
  return { healthz, readyz };
}

export interface HealthServerOptions {
  /** Host to listen on ('' = every address). */
  host: string;
  /** Port; 0 picks a free one (see address()). */
  port: number;
  inputs(): HealthInputs;
  nowMs(): number;
  /** Readiness fails once every export failed for longer than this. */
  exportFailureMillis: number;
}

export class HealthServer {
  private readonly _options: HealthServerOptions;
  private readonly _server: Server;
  private _closed: Promise<void> | undefined;

  constructor(options: HealthServerOptions) {
    this._options = options;
    this._server = createServer((req, res) => this._handle(req, res));
    // Probes are short requests; nothing here may keep the process from exiting.
    this._server.keepAliveTimeout = 1000;
  }

  /** Starts listening. Rejects with the listen error (EADDRINUSE, EACCES, ...). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this._server.once('error', onError);
      this._server.listen({ host: this._options.host === '' ? undefined : this._options.host, port: this._options.port }, () => {
        this._server.off('error', onError);
        this._server.unref();
        resolve();
      });
    });
  }

  /** The bound address, e.g. "127.0.0.1:8080" or "[::1]:8080". */
  address(): string {
    const a = this._server.address() as AddressInfo | null;
    if (a === null) return '';
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /** Stops listening and ends open connections. Idempotent; never rejects. */
  close(): Promise<void> {
    this._closed ??= new Promise((resolve) => {
      this._server.close(() => resolve());
      this._server.closeAllConnections();
    });
    return this._closed;
  }

  private _handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    let status: number;
    let body: Record<string, unknown>;
    if (path !== '/healthz' && path !== '/readyz') {
      status = 404;
      body = { status: 'not found', endpoints: ['/healthz', '/readyz'] };
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      status = 405;
      body = { status: 'method not allowed' };
      res.setHeader('Allow', 'GET, HEAD');
    } else {
      const answers = evaluateHealth(this._options.inputs(), this._options.nowMs(), this._options.exportFailureMillis);
      const answer = path === '/healthz' ? answers.healthz : answers.readyz;
      status = answer.ok ? 200 : 503;
      body = answer.body;
    }
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : text);
  }
}
