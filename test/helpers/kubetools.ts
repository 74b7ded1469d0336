/**
 * The real Kubernetes tools that deploy/setup/kubetools.sh installs
 * (kubernetes-validate, kustomize, a Python with PyYAML), as the manifest
 * test (deploy-kubernetes.test.ts) and the Helm chart test (helm.test.ts)
 * run them on what they check.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

/** The oldest Kubernetes the manifests are for (native sidecars: 1.29) and the newest the validator knows. */
export const KUBERNETES_VERSIONS = ['1.29.0', '1.37.0'];

export type Obj = Record<string, any>;

export interface RunResult {
  code: number;
  /** stdout then stderr. */
  output: string;
  stdout: string;
}

/** The tools' folder: FLOWTAP_KUBETOOLS, else what deploy/setup/kubetools.sh prints (it installs them when missing). */
export function kubeTools(): string {
  return (
    process.env.FLOWTAP_KUBETOOLS ||
    execFileSync(join(ROOT, 'deploy', 'setup', 'kubetools.sh'), { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop()!
  );
}

/** Runs cmd to its end (60 s at most); never rejects: the exit code says how it went. */
export function run(cmd: string, args: string[], cwd = ROOT, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((res) => {
    execFile(cmd, args, { cwd, env, timeout: 60000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      res({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, output: `${stdout}${stderr}`, stdout });
    });
  });
}

/** kubernetes-validate against the schemas of Kubernetes `version`; strict: unknown fields are errors. */
export function validate(tools: string, version: string, files: string[], options: { strict?: boolean; cwd?: string } = {}): Promise<RunResult> {
  const strict = options.strict ?? true;
  return run(join(tools, 'kubernetes-validate'), [...(strict ? ['--strict'] : []), '-k', version, ...files], options.cwd);
}

/** How many objects kubernetes-validate said passed. */
export function passedCount(output: string): number {
  return output.split('\n').filter((l) => l.includes(' passed for resource ')).length;
}

/** The YAML documents of each file, read with the tools' PyYAML (empty documents left out). */
export function readYamlDocuments(tools: string, files: string[], cwd = ROOT): Record<string, Obj[]> {
  const script = 'import sys, json, yaml; json.dump({f: [d for d in yaml.safe_load_all(open(f)) if d is not None] for f in sys.argv[1:]}, sys.stdout)';
  return JSON.parse(execFileSync(join(tools, 'python'), ['-c', script, ...files], { cwd, encoding: 'utf8' })) as Record<string, Obj[]>;
}

/** `kustomize build dir`. */
export function kustomizeBuild(tools: string, dir: string): Promise<RunResult> {
  return run(join(tools, 'kustomize'), ['build', dir]);
}
