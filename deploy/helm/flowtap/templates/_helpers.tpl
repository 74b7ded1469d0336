{{/*
The release's name for flowtap's objects: the release name, with "-flowtap"
unless it already says flowtap; at most 63 characters (a DNS label).
*/}}
{{- define "flowtap.fullname" -}}
{{- if contains "flowtap" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-flowtap" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flowtap.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flowtap.labels" -}}
{{ include "flowtap.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The values checked once, before anything is rendered: one line naming the
value that is wrong.
*/}}
{{- define "flowtap.validate" -}}
{{- if not (has .Values.mode (list "daemonset" "sidecar")) -}}
{{- fail (printf "mode: %q is neither daemonset nor sidecar" (toString .Values.mode)) -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
{{- if not .Values.tls.secretName -}}
{{- fail "tls.secretName: tls.enabled needs the Secret that holds the CA (and the client certificate and key)" -}}
{{- end -}}
{{- if not (hasPrefix "https://" .Values.collector.endpoint) -}}
{{- fail (printf "collector.endpoint: %q is not https://, which tls.enabled needs" .Values.collector.endpoint) -}}
{{- end -}}
{{- if ne (empty .Values.tls.clientCert) (empty .Values.tls.clientKey) -}}
{{- fail "tls.clientCert, tls.clientKey: give both (mutual TLS) or neither" -}}
{{- end -}}
{{- end -}}
{{- if lt (int .Values.runAsUser) 1 -}}
{{- fail (printf "runAsUser: %v is root; flowtap runs as a non-root user (its capabilities come from the node executable's file capabilities)" .Values.runAsUser) -}}
{{- end -}}
{{- if and .Values.health.enabled (or (lt (int .Values.health.port) 1) (gt (int .Values.health.port) 65535)) -}}
{{- fail (printf "health.port: %v is not a port (1-65535)" .Values.health.port) -}}
{{- end -}}
{{- end -}}

{{/*
OTEL_RESOURCE_ATTRIBUTES: the pod, its namespace and node from the downward
API (k8s.pod.uid is also how --cgroup pod finds the pod's cgroup), the
workload, the emitting container, then .Values.resourceAttributes.
*/}}
{{- define "flowtap.resourceAttributes" -}}
{{- $pairs := list "k8s.pod.name=$(K8S_POD_NAME)" "k8s.pod.uid=$(K8S_POD_UID)" "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" "k8s.node.name=$(K8S_NODE_NAME)" -}}
{{- if eq .Values.mode "daemonset" -}}
{{- $pairs = append $pairs (printf "k8s.daemonset.name=%s" (include "flowtap.fullname" .)) -}}
{{- else -}}
{{- $pairs = append $pairs (printf "k8s.deployment.name=%s" .Values.sidecar.name) -}}
{{- end -}}
{{- $pairs = append $pairs "k8s.container.name=flowtap" -}}
{{- range $k, $v := .Values.resourceAttributes -}}
{{- $pairs = append $pairs (printf "%s=%s" $k (toString $v)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/*
The flowtap container, the same in both modes but for what it watches
(--cgroup: the whole mounted hierarchy, or its pod) and its resources.
*/}}
{{- define "flowtap.container" -}}
{{- $v := .Values -}}
- name: flowtap
  image: {{ printf "%s:%s" $v.image.repository (default .Chart.AppVersion $v.image.tag) | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if eq $v.mode "sidecar" }}
  # A native sidecar: it starts before the workload's containers, so flows
  # they open at start-up are seen, and stops after them.
  restartPolicy: Always
  {{- end }}
  args:
    - --cgroup
    - {{ if eq $v.mode "daemonset" }}{{ $v.cgroup.mountPath }}{{ else }}pod{{ end }}
    {{- if $v.health.enabled }}
    - --health-address
    - {{ printf ":%d" (int $v.health.port) | quote }}
    {{- end }}
    {{- range $v.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    - name: K8S_POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: K8S_POD_UID
      valueFrom:
        fieldRef:
          fieldPath: metadata.uid
    - name: K8S_NAMESPACE_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: K8S_NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    # $(VAR) expands only the variables defined above it.
    - name: OTEL_RESOURCE_ATTRIBUTES
      value: {{ include "flowtap.resourceAttributes" . | quote }}
    - name: OTEL_EXPORTER_OTLP_ENDPOINT
      value: {{ $v.collector.endpoint | quote }}
    {{- if $v.collector.headersSecret.name }}
    - name: OTEL_EXPORTER_OTLP_HEADERS
      valueFrom:
        secretKeyRef:
          name: {{ $v.collector.headersSecret.name }}
          key: {{ $v.collector.headersSecret.key }}
    {{- end }}
    {{- if $v.tls.enabled }}
    - name: OTEL_EXPORTER_OTLP_CERTIFICATE
      value: {{ printf "%s/%s" $v.tls.mountPath $v.tls.ca | quote }}
    {{- if $v.tls.clientCert }}
    - name: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE
      value: {{ printf "%s/%s" $v.tls.mountPath $v.tls.clientCert | quote }}
    - name: OTEL_EXPORTER_OTLP_CLIENT_KEY
      value: {{ printf "%s/%s" $v.tls.mountPath $v.tls.clientKey | quote }}
    {{- end }}
    {{- end }}
    {{- with $v.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if $v.health.enabled }}
  ports:
    - name: health
      containerPort: {{ int $v.health.port }}
      protocol: TCP
  # /healthz fails once the ring-buffer reader failed; /readyz also while
  # starting or stopping and while every export has failed for longer than
  # --ready-export-failure-seconds.
  livenessProbe:
    httpGet:
      path: /healthz
      port: health
    periodSeconds: 10
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: health
    periodSeconds: 5
    failureThreshold: 2
  {{- end }}
  resources:
    {{- toYaml (index $v.resources $v.mode) | nindent 4 }}
  securityContext:
    # Not root: the node executable's file capabilities (cap_bpf,
    # cap_net_admin=ep) give flowtap these two, and only because `add`
    # puts them in the bounding set. With allowPrivilegeEscalation: false
    # (no_new_privs) the kernel also caps them at what the runtime put in
    # the permitted set, which containerd and CRI-O set to `add`.
    runAsNonRoot: true
    runAsUser: {{ int $v.runAsUser }}
    runAsGroup: {{ int $v.runAsGroup }}
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: ["ALL"]
      # BPF: create the maps, load the programs. NET_ADMIN: attach them to
      # the cgroup. Nothing else.
      add: ["BPF", "NET_ADMIN"]
  volumeMounts:
    - name: host-cgroup
      mountPath: {{ $v.cgroup.mountPath }}
      readOnly: true
    {{- if $v.tls.enabled }}
    - name: collector-tls
      mountPath: {{ $v.tls.mountPath }}
      readOnly: true
    {{- end }}
{{- end -}}

{{/* The pod's volumes for the flowtap container. */}}
{{- define "flowtap.volumes" -}}
- name: host-cgroup
  hostPath:
    path: {{ .Values.cgroup.hostPath }}
    type: Directory
{{- if .Values.tls.enabled }}
- name: collector-tls
  secret:
    secretName: {{ .Values.tls.secretName }}
    # Readable by flowtap's uid; only the flowtap container mounts it.
    defaultMode: 0444
{{- end }}
{{- end -}}
