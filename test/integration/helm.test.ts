/**
 * The Helm chart in deploy/helm/flowtap, checked by real tools: helm v4
 * (built from its Go module by deploy/setup/helm.sh) lints it and renders it
 * for each example values set in its ci/ folder (the DaemonSet, the sidecar,
 * TLS to a gateway), and what it renders goes through the checks the
 * manifests in deploy/kubernetes get (test/helpers/kubetools.ts):
 * kubernetes-validate, strict, for the oldest and newest Kubernetes they are
 * for, and kustomize. Then what the chart promises flowtap, read from the
 * rendered objects and compared with the values it was given: the two
 * capabilities and nothing else, non-root, a read-only root, the read-only
 * hostPath of the node's cgroup v2 hierarchy, the collector endpoint and its
 * TLS files, and one-line refusals of values that cannot work.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FLOWTAP_USER, SIDECAR_CAPABILITIES } from '../helpers/kube';
import { KUBERNETES_VERSIONS, kubeTools, kustomizeBuild, passedCount, readYamlDocuments, run, validate, type Obj, type RunResult } from '../helpers/kubetools';

const ROOT = resolve(__dirname, '..', '..');
const CHART = join(ROOT, 'deploy', 'helm', 'flowtap');
const HELM_VERSION = 'v4.3.2';
const RELEASE = 'flowtap';
const NAMESPACE = 'flowtap';
/** The example values sets: ci/<name>-values.yaml. */
const VALUES_SETS = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('-values.yaml'))
  .map((f) => f.slice(0, -'-values.yaml'.length))
  .sort();

describe('Helm chart deploy/helm/flowtap (real helm v4 lint + template, real kubernetes-validate and kustomize on what it renders)', () => {
  let helm: string;
  let tools: string;
  let tmp: string;
  /** helm's own cache, config and data folders: under tmp, not the user's. */
  let helmEnv: NodeJS.ProcessEnv;
  /** The chart's values.yaml and each set's values file, read with PyYAML. */
  let defaults: Obj;
  const given: Record<string, Obj> = {};
  /** Each set's rendered file and its objects. */
  const rendered: Record<string, { file: string; objects: Obj[] }> = {};

  function helmRun(args: string[]): Promise<RunResult> {
    return run(helm, args, ROOT, helmEnv);
  }

  function template(extra: string[]): Promise<RunResult> {
    return helmRun(['template', RELEASE, CHART, '--namespace', NAMESPACE, ...extra]);
  }

  beforeAll(async () => {
    helm =
      process.env.FLOWTAP_HELM ||
      execFileSync(join(ROOT, 'deploy', 'setup', 'helm.sh'), { encoding: 'utf8' })
        .trim()
        .split('\n')
        .pop()!;
    tools = kubeTools();
    tmp = mkdtempSync(join(tmpdir(), 'flowtap-helm-'));
    helmEnv = { PATH: process.env.PATH, HELM_CACHE_HOME: join(tmp, 'cache'), HELM_CONFIG_HOME: join(tmp, 'config'), HELM_DATA_HOME: join(tmp, 'data') };
    defaults = readYamlDocuments(tools, ['values.yaml'], CHART)['values.yaml'][0];
    for (const set of VALUES_SETS) {
      given[set] = readYamlDocuments(tools, [`ci/${set}-values.yaml`], CHART)[`ci/${set}-values.yaml`][0];
      const r = await template(['--values', join(CHART, 'ci', `${set}-values.yaml`)]);
      if (r.code !== 0) throw new Error(`helm template with ci/${set}-values.yaml failed: ${r.output}`);
      const file = join(tmp, `${set}.yaml`);
      writeFileSync(file, r.stdout);
      rendered[set] = { file, objects: readYamlDocuments(tools, [file])[file] };
    }
  }, 600_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it(`is helm ${HELM_VERSION}, and the example values sets are the DaemonSet, the sidecar and TLS`, async () => {
    const r = await helmRun(['version', '--template', '{{.Version}}']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(HELM_VERSION);
    expect(VALUES_SETS).toEqual(['daemonset', 'sidecar', 'tls']);
  });

  it.each(['values.yaml', ...VALUES_SETS.map((s) => `ci/${s}-values.yaml`)])('helm lint --strict passes with %s', async (file) => {
    const r = await helmRun(['lint', '--strict', CHART, ...(file === 'values.yaml' ? [] : ['--values', join(CHART, file)])]);
    expect(r.output).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(r.output).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(r.code).toBe(0);
  });

  describe.each(VALUES_SETS)('rendered with ci/%s-values.yaml', (set) => {
    const objects = () => rendered[set].objects;
    const values = (path: string): unknown =>
      path.split('.').reduce<any>((o, k) => o?.[k], given[set]) ?? path.split('.').reduce<any>((o, k) => o?.[k], defaults);
    const mode = () => values('mode') as string;
    const workload = () => {
      const kind = mode() === 'daemonset' ? 'DaemonSet' : 'Deployment';
      const all = objects().filter((o) => o.kind === kind);
      expect(all).toHaveLength(1);
      return all[0];
    };
    const pod = () => workload().spec.template.spec;
    const flowtap = () => {
      const list = (mode() === 'daemonset' ? pod().containers : pod().initContainers) as Obj[];
      return list.find((c) => c.name === 'flowtap')!;
    };
    const env = (name: string) => (flowtap().env as Obj[]).find((e) => e.name === name);

    it.each(KUBERNETES_VERSIONS)('is valid for Kubernetes %s (strict: no unknown fields), every object', async (version) => {
      const r = await validate(tools, version, [rendered[set].file]);
      expect(r.output).not.toMatch(/ERROR|WARN/);
      expect(r.code).toBe(0);
      expect(passedCount(r.output)).toBe(objects().length);
    });

    it('kustomize takes it as a resource and puts it in a namespace; what it builds is valid too', async () => {
      const dir = join(tmp, `kustomize-${set}`);
      mkdirSync(dir);
      copyFileSync(rendered[set].file, join(dir, 'rendered.yaml'));
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: flowtap-kustomized\nresources:\n  - rendered.yaml\n',
      );
      const built = await kustomizeBuild(tools, dir);
      expect(built.code).toBe(0);
      const out = join(dir, 'built.yaml');
      writeFileSync(out, built.stdout);
      const objs = readYamlDocuments(tools, [out])[out];
      expect(objs.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(objects().map((o) => `${o.kind}/${o.metadata.name}`));
      expect(objs.every((o) => o.metadata.namespace === 'flowtap-kustomized')).toBe(true);
      for (const version of KUBERNETES_VERSIONS) {
        const r = await validate(tools, version, [out]);
        expect(r.output).not.toMatch(/ERROR|WARN/);
        expect(r.code).toBe(0);
      }
    });

    it(`renders one ${set === 'sidecar' ? 'Deployment with flowtap as its native sidecar' : 'DaemonSet'} and nothing else`, () => {
      expect(objects().map((o) => o.kind)).toEqual([mode() === 'daemonset' ? 'DaemonSet' : 'Deployment']);
      if (mode() === 'sidecar') {
        expect(flowtap().restartPolicy).toBe('Always');
        expect(pod().containers).toEqual(values('sidecar.containers'));
      } else {
        expect(flowtap().restartPolicy).toBeUndefined();
        expect(pod().tolerations).toEqual(values('daemonset.tolerations'));
      }
    });

    it(`runs flowtap as uid ${FLOWTAP_USER}, non-root, with capabilities exactly [BPF, NET_ADMIN] after drop [ALL], no privilege escalation, a read-only root: the same securityContext as deploy/kubernetes`, () => {
      const sc = flowtap().securityContext;
      expect(sc.capabilities.add).toEqual([...SIDECAR_CAPABILITIES]);
      expect(sc.capabilities.drop).toEqual(['ALL']);
      expect(sc.runAsNonRoot).toBe(true);
      expect(sc.runAsUser).toBe(FLOWTAP_USER);
      expect(sc.runAsGroup).toBe(FLOWTAP_USER);
      expect(sc.readOnlyRootFilesystem).toBe(true);
      expect(sc.allowPrivilegeEscalation).toBe(false);
      expect(sc.privileged).toBeUndefined();
      const manifest = mode() === 'daemonset' ? 'daemonset.yaml' : 'sidecar.yaml';
      const [doc] = readYamlDocuments(tools, [manifest], join(ROOT, 'deploy', 'kubernetes'))[manifest];
      const spec = doc.spec.template.spec;
      const theirs = ([...(spec.initContainers ?? []), ...spec.containers] as Obj[]).find((c) => c.name === 'flowtap')!;
      expect(sc).toEqual(theirs.securityContext);
      // nothing at the pod level widens it
      expect(pod().hostPID).toBeUndefined();
      expect(pod().hostNetwork).toBeUndefined();
      expect(pod().securityContext).toBeUndefined();
      expect(pod().automountServiceAccountToken).toBe(false);
    });

    it("mounts the node's cgroup v2 hierarchy (the hostPath) read-only and watches all of it (DaemonSet) or its pod (sidecar)", () => {
      const volume = (pod().volumes as Obj[]).find((v) => v.hostPath !== undefined)!;
      expect(volume.hostPath).toEqual({ path: values('cgroup.hostPath'), type: 'Directory' });
      expect(volume.hostPath.path).toBe('/sys/fs/cgroup');
      const mount = (flowtap().volumeMounts as Obj[]).find((m) => m.name === volume.name)!;
      expect(mount.readOnly).toBe(true);
      expect(mount.mountPath).toBe(values('cgroup.mountPath'));
      expect(flowtap().args.slice(0, 2)).toEqual(['--cgroup', mode() === 'daemonset' ? mount.mountPath : 'pod']);
    });

    it('sends to the collector endpoint it was given, with the pod from the downward API in OTEL_RESOURCE_ATTRIBUTES', () => {
      expect(env('OTEL_EXPORTER_OTLP_ENDPOINT')!.value).toBe(given[set].collector.endpoint);
      const fields: Record<string, string> = {};
      for (const e of flowtap().env as Obj[]) if (e.valueFrom?.fieldRef) fields[e.name] = e.valueFrom.fieldRef.fieldPath;
      const attrs = Object.fromEntries((env('OTEL_RESOURCE_ATTRIBUTES')!.value as string).split(',').map((kv) => kv.split('=')));
      const from = (attr: string) => /^\$\((\w+)\)$/.exec(attrs[attr])?.[1];
      expect(fields[from('k8s.pod.uid')!]).toBe('metadata.uid');
      expect(fields[from('k8s.pod.name')!]).toBe('metadata.name');
      expect(fields[from('k8s.namespace.name')!]).toBe('metadata.namespace');
      expect(fields[from('k8s.node.name')!]).toBe('spec.nodeName');
      expect(attrs['k8s.container.name']).toBe('flowtap');
      if (mode() === 'daemonset') expect(attrs['k8s.daemonset.name']).toBe(workload().metadata.name);
      else expect(attrs['k8s.deployment.name']).toBe(workload().metadata.name);
      const order = (flowtap().env as Obj[]).map((e) => e.name);
      for (const v of Object.keys(fields)) expect(order.indexOf(v)).toBeLessThan(order.indexOf('OTEL_RESOURCE_ATTRIBUTES'));
    });

    it('TLS: the CA and client certificate and key from the Secret, mounted read-only, named by OTEL_EXPORTER_OTLP_*; headers only from a Secret (or, without TLS, none of it)', () => {
      const tlsOn = values('tls.enabled') === true;
      const secretVolume = (pod().volumes as Obj[]).find((v) => v.secret !== undefined);
      const names = ['OTEL_EXPORTER_OTLP_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CLIENT_KEY'];
      if (!tlsOn) {
        expect(secretVolume).toBeUndefined();
        for (const n of names) expect(env(n)).toBeUndefined();
        expect(new URL(env('OTEL_EXPORTER_OTLP_ENDPOINT')!.value).protocol).toBe('http:');
        return;
      }
      expect(new URL(env('OTEL_EXPORTER_OTLP_ENDPOINT')!.value).protocol).toBe('https:');
      expect(secretVolume!.secret.secretName).toBe(values('tls.secretName'));
      const mount = (flowtap().volumeMounts as Obj[]).find((m) => m.name === secretVolume!.name)!;
      expect(mount).toEqual({ name: secretVolume!.name, mountPath: values('tls.mountPath'), readOnly: true });
      const files = [values('tls.ca'), values('tls.clientCert'), values('tls.clientKey')].map((f) => `${mount.mountPath}/${f}`);
      expect(names.map((n) => env(n)?.value)).toEqual(files);
      const headers = env('OTEL_EXPORTER_OTLP_HEADERS')!;
      expect(headers.value).toBeUndefined();
      expect(headers.valueFrom.secretKeyRef).toEqual({ name: values('collector.headersSecret.name'), key: values('collector.headersSecret.key') });
    });

    it('serves /healthz and /readyz on the health port, which the liveness and readiness probes use', () => {
      const port = values('health.port') as number;
      expect(flowtap().args.slice(2, 4)).toEqual(['--health-address', `:${port}`]);
      expect(flowtap().ports).toEqual([{ name: 'health', containerPort: port, protocol: 'TCP' }]);
      expect(flowtap().livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
      expect(flowtap().readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    });

    it("has the values' resources for its mode, with CPU and memory requests and a memory limit", () => {
      const r = flowtap().resources;
      expect(r).toEqual(values(`resources.${mode()}`));
      expect(r.requests.cpu).toBeDefined();
      expect(r.requests.memory).toBeDefined();
      expect(r.limits.memory).toBeDefined();
    });
  });

  it.each([
    [['--set', 'mode=node'], 'mode: "node" is neither daemonset nor sidecar'],
    [['--set', 'tls.enabled=true', '--set', 'collector.endpoint=https://c:4317'], 'tls.secretName: tls.enabled needs the Secret'],
    [
      ['--set', 'tls.enabled=true', '--set', 'tls.secretName=s'],
      'collector.endpoint: "http://flowtap-collector:4317" is not https://, which tls.enabled needs',
    ],
    [
      ['--set', 'tls.enabled=true', '--set', 'tls.secretName=s', '--set', 'collector.endpoint=https://c:4317', '--set', 'tls.clientKey='],
      'tls.clientCert, tls.clientKey: give both',
    ],
    [['--set', 'health.port=70000'], 'health.port: 70000 is not a port'],
    [['--set', 'runAsUser=0'], 'runAsUser: 0 is root; flowtap runs as a non-root user'],
  ])('refuses values that cannot work: %j -> one line naming the value', async (args, message) => {
    const r = await template(args);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.output).toContain(message);
  });

  it('the defaults render the DaemonSet; without TLS no Secret is named anywhere', async () => {
    const r = await template([]);
    expect(r.code).toBe(0);
    const file = join(tmp, 'defaults.yaml');
    writeFileSync(file, r.stdout);
    const objs = readYamlDocuments(tools, [file])[file];
    expect(objs.map((o) => o.kind)).toEqual(['DaemonSet']);
    expect(r.stdout).not.toMatch(/secret/i);
  });
});
