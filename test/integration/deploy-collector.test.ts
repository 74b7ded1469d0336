/**
 * The collector configurations flowtap ships (deploy/collector/*.yaml, the
 * top-level otel-collector.yaml and its copy in deploy/kubernetes/) checked by
 * the REAL OpenTelemetry Collector's `validate` command: the collector built
 * from deploy/otelcol-builder.yaml, whose components decode and validate each
 * block exactly as they would at start-up.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { collectorBinary } from '../helpers/collector';

const ROOT = resolve(__dirname, '..', '..');
const COLLECTOR_DIR = join(ROOT, 'deploy', 'collector');

/**
 * The builder manifest's elasticsearch exporter is v0.157.0 on core v0.165.0
 * (newer versions are not served by the Go module proxy here): its default
 * sending_queue.batch lacks the partition settings core v0.165 requires, so
 * they are set, to core's own defaults, in a second --config that is merged
 * over the file. otelcol-contrib 0.165, whose exporter has them, needs nothing.
 */
const ES_VERSION_SKEW_FIX = 'yaml:exporters::elasticsearch::sending_queue::batch::partition: {idle_timeout: 90s, cache_size: 10000}';

interface Result {
  code: number;
  output: string;
}

async function validate(...configs: string[]): Promise<Result> {
  return validateWithEnv({}, ...configs);
}

async function validateWithEnv(env: Record<string, string>, ...configs: string[]): Promise<Result> {
  const binary = await collectorBinary();
  const args = ['validate', ...configs.flatMap((c) => ['--config', c])];
  // Only PATH (and what a test names): the configs' ${env:...} defaults must be enough to validate.
  return new Promise((res) => {
    execFile(binary, args, { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30000 }, (err, stdout, stderr) => {
      res({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, output: `${stdout}${stderr}` });
    });
  });
}

describe('collector configs, validated by the real OpenTelemetry Collector (otelcol validate)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowtap-collector-configs-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['deploy/collector/loki.yaml'],
    ['deploy/collector/victorialogs.yaml'],
    ['deploy/collector/gateway.yaml'],
    ['otel-collector.yaml'],
    ['deploy/kubernetes/otel-collector.yaml'],
  ])('%s is valid as it is', async (file) => {
    const r = await validate(join(ROOT, file));
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  });

  it('deploy/collector/elasticsearch.yaml is valid for the real elasticsearch exporter (v0.157.0; partition defaults merged in for its skew with core v0.165)', async () => {
    const components = await new Promise<string>(async (res, rej) =>
      execFile(await collectorBinary(), ['components'], (err, stdout) => (err ? rej(err) : res(stdout))),
    );
    expect(components).toMatch(
      /- name: elasticsearch\n\s+module: github\.com\/open-telemetry\/opentelemetry-collector-contrib\/exporter\/elasticsearchexporter /,
    );
    const r = await validate(join(COLLECTOR_DIR, 'elasticsearch.yaml'), ES_VERSION_SKEW_FIX);
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  });

  it('deploy/collector/kubernetes.yaml is valid for the real k8s_attributes processor, with the node name the downward API gives', async () => {
    const components = await new Promise<string>(async (res, rej) =>
      execFile(await collectorBinary(), ['components'], (err, stdout) => (err ? rej(err) : res(stdout))),
    );
    expect(components).toMatch(
      /- name: k8s_attributes\n\s+module: github\.com\/open-telemetry\/opentelemetry-collector-contrib\/processor\/k8sattributesprocessor /,
    );
    const file = join(COLLECTOR_DIR, 'kubernetes.yaml');
    const r = await validateWithEnv({ K8S_NODE_NAME: 'node-1' }, file);
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
    // The processor really reads the block: without the node name its filter is refused.
    const unset = await validate(file);
    expect(unset.code).not.toBe(0);
    expect(unset.output).toContain('K8S_NODE_NAME');
    // Pod association on the two Resource keys flowtap writes, in this order.
    const text = readFileSync(file, 'utf8');
    const names = [...text.matchAll(/from: resource_attribute\n\s+name: (\S+)/g)].map((m) => m[1]);
    expect(names).toEqual(['k8s.pod.uid', 'container.id']);
  });

  it('the check is real: a misspelt exporter key, an unknown component and a missing endpoint are refused', async () => {
    const loki = readFileSync(join(COLLECTOR_DIR, 'loki.yaml'), 'utf8');
    const typo = join(dir, 'typo.yaml');
    writeFileSync(typo, loki.replace('    endpoint: ${env:LOKI_ENDPOINT', '    endpiont: ${env:LOKI_ENDPOINT'));
    const r1 = await validate(typo);
    expect(r1.code).not.toBe(0);
    expect(r1.output).toContain('endpiont');

    const unknown = join(dir, 'unknown.yaml');
    writeFileSync(unknown, loki.replace(/otlp_http\/loki/g, 'lokiexporter/loki'));
    expect((await validate(unknown)).code).not.toBe(0);

    const es = readFileSync(join(COLLECTOR_DIR, 'elasticsearch.yaml'), 'utf8');
    const noEndpoint = join(dir, 'es-no-endpoint.yaml');
    writeFileSync(noEndpoint, es.replace(/^    endpoint: .*\n/m, ''));
    const r3 = await validate(noEndpoint, ES_VERSION_SKEW_FIX);
    expect(r3.code).not.toBe(0);
    expect(r3.output).toMatch(/endpoint/);
  });
});
