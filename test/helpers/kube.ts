/**
 * What the Kubernetes manifests in deploy/kubernetes promise about the
 * flowtap container, shared by the test that validates them and the test
 * that runs the real CLI the way they run it.
 */

/**
 * securityContext.capabilities.add of the flowtap container (after drop:
 * [ALL]): exactly what src/kernel/probe.ts REQUIRED_CAPABILITIES names.
 */
export const SIDECAR_CAPABILITIES = ['BPF', 'NET_ADMIN'] as const;
