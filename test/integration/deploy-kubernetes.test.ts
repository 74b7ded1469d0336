/**
 * The Kubernetes manifests in deploy/kubernetes, checked by real tools
 * (deploy/setup/kubetools.sh installs them): kubernetes-validate (the
 * Kubernetes JSON schemas it ships, strict: unknown fields are errors) and
 * kustomize (renders the kustomization). Then what the manifests promise
 * flowtap: the capabilities, the read-only host cgroup mount, the downward-API
 * resource attributes and the collector Service they point at.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SIDECAR_CAPABILITIES, FLOWTAP_USER } from '../helpers/kube';
import { KUBERNETES_VERSIONS, kubeTools, kustomizeBuild, passedCount, readYamlDocuments, validate as validateWith, type Obj } from '../helpers/kubetools';

const ROOT = resolve(__dirname, '..', '..');
const KUBE_DIR = join(ROOT, 'deploy', 'kubernetes');
/** The manifests; kustomization.yaml is checked by kustomize, otel-collector.yaml by deploy-collector.test.ts. */
const MANIFESTS = readdirSync(KUBE_DIR)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml' && f !== 'otel-collector.yaml')
  .sort();

/** A Kubernetes resource quantity ("50m", "128Mi", "1.5", "2G") as a number: cores or bytes. */
function quantity(q: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q));
  if (m === null) throw new Error(`not a resource quantity: ${JSON.stringify(q)}`);
  const scale: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  return Number(m[1]) * (m[2] === undefined ? 1 : scale[m[2]]);
}

describe('Kubernetes manifests (real kubernetes-validate JSON-schema validation, real kustomize)', () => {
  let tools: string;
  let tmp: string;
  /** The YAML documents of each manifest, read with the tools' PyYAML. */
  let docs: Record<string, Obj[]>;

  beforeAll(() => {
    tools = kubeTools();
    tmp = mkdtempSync(join(tmpdir(), 'flowtap-kube-'));
    docs = readYamlDocuments(tools, MANIFESTS, KUBE_DIR);
  }, 300_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  function validate(version: string, files: string[], strict = true) {
    return validateWith(tools, version, files, { strict, cwd: KUBE_DIR });
  }

  function find(kind: string, name: string): Obj {
    const all = Object.values(docs).flat();
    const o = all.find((d) => d.kind === kind && d.metadata.name === name);
    if (o === undefined) throw new Error(`no ${kind}/${name} in ${MANIFESTS.join(', ')}`);
    return o;
  }

  it('lists the manifests it checks', () => {
    expect(MANIFESTS).toEqual(['collector.yaml', 'daemonset.yaml', 'namespace.yaml', 'sidecar.yaml']);
  });

  it.each(KUBERNETES_VERSIONS)('every manifest is valid for Kubernetes %s (strict: no unknown fields)', async (version) => {
    const r = await validate(version, MANIFESTS);
    expect(r.output).not.toMatch(/ERROR|WARN/);
    expect(r.code).toBe(0);
    expect(passedCount(r.output)).toBe(Object.values(docs).flat().length);
  });

  it('kustomize renders kustomization.yaml into valid objects, all in the flowtap namespace, with the collector config generated from otel-collector.yaml', async () => {
    const built = await kustomizeBuild(tools, KUBE_DIR);
    expect(built.code).toBe(0);
    const rendered = join(tmp, 'rendered.yaml');
    writeFileSync(rendered, built.output);
    for (const version of KUBERNETES_VERSIONS) {
      const r = await validate(version, [rendered]);
      expect(r.output).not.toMatch(/ERROR|WARN/);
      expect(r.code).toBe(0);
    }
    const names = [...built.output.matchAll(/^kind: (\w+)\nmetadata:\n(?:  .*\n)*?  name: (\S+)/gm)].map((m) => `${m[1]}/${m[2]}`);
    expect(names.map((n) => n.replace(/^(ConfigMap\/flowtap-collector-config)-[a-z0-9]+$/, '$1-<hash>')).sort()).toEqual([
      'ConfigMap/flowtap-collector-config-<hash>',
      'DaemonSet/flowtap-node',
      'Deployment/demo-app',
      'Deployment/flowtap-collector',
      'Namespace/flowtap',
      'Service/flowtap-collector',
    ]);
    expect(built.output.match(/^  namespace: (\S+)$/gm)!.every((l) => l.endsWith(' flowtap'))).toBe(true);
    // the collector's volume names the generated ConfigMap, content hash included
    const configMap = names.find((n) => n.startsWith('ConfigMap/'))!.slice('ConfigMap/'.length);
    expect(built.output).toMatch(new RegExp(`configMap:\\n\\s+name: ${configMap}\\n`));
  });

  it("the collector config in the ConfigMap is the repository's otel-collector.yaml, byte for byte", () => {
    expect(readFileSync(join(KUBE_DIR, 'otel-collector.yaml'), 'utf8')).toBe(readFileSync(join(ROOT, 'otel-collector.yaml'), 'utf8'));
  });

  it('the validator is real: an unknown field, a wrong type and a field too new for the version are refused', async () => {
    const sidecar = readFileSync(join(KUBE_DIR, 'sidecar.yaml'), 'utf8');
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, sidecar.replace('readOnlyRootFilesystem: true', 'readOnlyRootFileSystem: true'));
    expect((await validate('1.29.0', [bad])).output).toContain("'readOnlyRootFileSystem' was unexpected");
    writeFileSync(bad, sidecar.replace('replicas: 1', 'replicas: one'));
    expect((await validate('1.29.0', [bad], false)).code).not.toBe(0);
    // initContainers[].restartPolicy (native sidecars) arrived in 1.28
    expect((await validate('1.27.0', ['sidecar.yaml'])).output).toContain("'restartPolicy' was unexpected");
  });

  describe.each([
    ['sidecar.yaml', 'Deployment', 'demo-app', 'initContainers'],
    ['daemonset.yaml', 'DaemonSet', 'flowtap-node', 'containers'],
  ])('%s: the flowtap container', (_file, kind, name, list) => {
    const pod = () => find(kind, name).spec.template.spec;
    const flowtap = () => (pod()[list] as Obj[]).find((c) => c.name === 'flowtap')!;
    const env = (n: string) => (flowtap().env as Obj[]).find((e) => e.name === n);

    it("runs as the image's non-root user with only the capabilities the CLI needs, no privilege escalation, a read-only root", () => {
      expect(flowtap().securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: FLOWTAP_USER,
        runAsGroup: FLOWTAP_USER,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'], add: [...SIDECAR_CAPABILITIES] },
      });
      expect(flowtap().securityContext.privileged).toBeUndefined();
      expect(pod().hostPID).toBeUndefined();
      expect(pod().hostNetwork).toBeUndefined();
    });

    it('mounts the host cgroup v2 hierarchy read-only and watches the pod (sidecar) or all of it (DaemonSet)', () => {
      const volume = (pod().volumes as Obj[]).find((v) => v.hostPath !== undefined)!;
      expect(volume.hostPath).toEqual({ path: '/sys/fs/cgroup', type: 'Directory' });
      const mount = (flowtap().volumeMounts as Obj[]).find((m) => m.name === volume.name)!;
      expect(mount.readOnly).toBe(true);
      expect(flowtap().args).toEqual(['--cgroup', kind === 'DaemonSet' ? mount.mountPath : 'pod']);
    });

    it('builds OTEL_RESOURCE_ATTRIBUTES from the downward API, with k8s.pod.uid for --cgroup pod', () => {
      const fields: Record<string, string> = {};
      for (const e of flowtap().env as Obj[]) if (e.valueFrom?.fieldRef) fields[e.name] = e.valueFrom.fieldRef.fieldPath;
      const attrs = Object.fromEntries((env('OTEL_RESOURCE_ATTRIBUTES')!.value as string).split(',').map((kv) => kv.split('=')));
      const from = (attr: string) => /^\$\((\w+)\)$/.exec(attrs[attr])?.[1];
      expect(fields[from('k8s.pod.name')!]).toBe('metadata.name');
      expect(fields[from('k8s.pod.uid')!]).toBe('metadata.uid');
      expect(fields[from('k8s.namespace.name')!]).toBe('metadata.namespace');
      expect(fields[from('k8s.node.name')!]).toBe('spec.nodeName');
      expect(attrs['k8s.container.name']).toBe('flowtap');
      // $(VAR) is only expanded for variables defined before it
      const order = (flowtap().env as Obj[]).map((e) => e.name);
      for (const v of Object.keys(fields)) expect(order.indexOf(v)).toBeLessThan(order.indexOf('OTEL_RESOURCE_ATTRIBUTES'));
    });

    it('sends to the collector Service on its OTLP/gRPC port, which selects the collector pods', () => {
      const url = new URL(env('OTEL_EXPORTER_OTLP_ENDPOINT')!.value as string);
      const service = find('Service', url.hostname.split('.')[0]);
      expect(service.spec.ports.find((p: Obj) => p.port === Number(url.port)).name).toBe('otlp-grpc');
      const collectorPod = find('Deployment', 'flowtap-collector').spec.template.metadata.labels;
      for (const [k, v] of Object.entries(service.spec.selector as Record<string, string>)) expect(collectorPod[k]).toBe(v);
    });

    it('has CPU and memory requests and a memory limit that cover what the manifest says was measured', () => {
      const r = flowtap().resources;
      // the manifest's comment: RSS 90 MiB idle, 192 MiB peak and 0.15 cores at 1000 connections/s
      const MiB = 2 ** 20;
      expect(quantity(r.requests.memory)).toBeGreaterThanOrEqual(90 * MiB);
      expect(quantity(r.limits.memory)).toBeGreaterThanOrEqual(192 * MiB);
      expect(quantity(r.limits.memory)).toBeGreaterThanOrEqual(quantity(r.requests.memory));
      expect(quantity(r.requests.cpu)).toBeGreaterThan(0);
      if (r.limits.cpu !== undefined) {
        expect(quantity(r.limits.cpu)).toBeGreaterThanOrEqual(0.15);
        expect(quantity(r.limits.cpu)).toBeGreaterThanOrEqual(quantity(r.requests.cpu));
      }
    });
  });
});
