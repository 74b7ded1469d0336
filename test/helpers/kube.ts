/**
 * What the Kubernetes manifests in deploy/kubernetes and the Helm chart in
 * deploy/helm/flowtap promise about the flowtap container, shared by the
 * tests that validate them and the tests that run the real CLI and image the
 * way they run it.
 */

/**
 * securityContext.capabilities.add of the flowtap container (after drop:
 * [ALL]): exactly what src/kernel/probe.ts REQUIRED_CAPABILITIES names.
 */
export const SIDECAR_CAPABILITIES = ['BPF', 'NET_ADMIN'] as const;

/** The image's USER (deploy/Dockerfile), uid and gid: runAsUser / runAsGroup of the flowtap container. */
export const FLOWTAP_USER = 65532;
