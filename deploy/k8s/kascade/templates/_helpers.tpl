{{/*
Names, labels and the figures derived per tier. deploy/k8s/README.md
gives every formula here with where its constants come from.
*/}}

{{- define "kascade.fullname" -}}
{{- if contains "kascade" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-kascade" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kascade.labels" -}}
app.kubernetes.io/name: kascade
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kascade.selector" -}}
app.kubernetes.io/name: kascade
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kascade.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "kascade.secretName" -}}
{{- .Values.secret.name | default (include "kascade.fullname" .) -}}
{{- end -}}

{{/* A Kubernetes name for a tier: DNS-1123, at most 63 with the prefix. */}}
{{- define "kascade.tierName" -}}
{{- $name := .tier.name | lower | replace "_" "-" | replace "." "-" -}}
{{- printf "%s-worker-%s" (include "kascade.fullname" .root) $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* max_inflight as the worker reads it (default 64, README). */}}
{{- define "kascade.maxInflight" -}}
{{- .config.max_inflight | default 64 | int -}}
{{- end -}}

{{/*
lagThreshold = M + ceil(M * T / L): the calls one replica has in flight
plus what it finishes in T seconds, M = max_inflight, L = latencyMs / 1000,
T = drainSeconds. Integer arithmetic.
*/}}
{{- define "kascade.lagThreshold" -}}
{{- $t := .tier -}}
{{- if $t.lagThreshold -}}
{{- $t.lagThreshold | int -}}
{{- else -}}
{{- $m := include "kascade.maxInflight" $t | int -}}
{{- $drain := $t.drainSeconds | default .root.Values.scaling.drainSeconds | int -}}
{{- $lat := required (printf "tiers[%s].latencyMs is required" $t.name) $t.latencyMs | int -}}
{{- if le $lat 0 -}}{{- fail (printf "tiers[%s].latencyMs must be > 0" $t.name) -}}{{- end -}}
{{- add $m (div (sub (add (mul $m $drain 1000) $lat) 1) $lat) -}}
{{- end -}}
{{- end -}}

{{/*
Worker requests (bench/README.md, worker benchmark): memory 16 MiB plus
80 KiB per call in flight, at least 32 MiB; CPU 0.26 ms a task at the
pool's rate M / L, at least 50m. Memory limit 4 x the request, at least
128 MiB; no CPU limit (throttling stretches calls, not cost).
*/}}
{{- define "kascade.workerResources" -}}
{{- $t := .tier -}}
{{- if $t.resources -}}
{{- toYaml $t.resources -}}
{{- else -}}
{{- $m := include "kascade.maxInflight" $t | int -}}
{{- $lat := $t.latencyMs | default 1000 | int -}}
{{- $mem := max 32 (add 16 (div (add (mul $m 80) 1023) 1024)) -}}
{{- $cpu := max 50 (div (add (mul $m 260) (sub $lat 1)) $lat) -}}
requests:
  cpu: {{ $cpu }}m
  memory: {{ $mem }}Mi
limits:
  memory: {{ max 128 (mul $mem 4) }}Mi
{{- end -}}
{{- end -}}

{{/* The daemons' metrics port and probes. */}}
{{- define "kascade.probes" -}}
ports:
  - name: metrics
    containerPort: {{ .Values.metricsPort }}
    protocol: TCP
startupProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 2
  failureThreshold: 30
readinessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 10
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /metrics
    port: metrics
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{- define "kascade.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
{{- end -}}

{{- define "kascade.env" -}}
envFrom:
  - secretRef:
      name: {{ include "kascade.secretName" . }}
      optional: true
{{- end -}}

{{- define "kascade.volumes" -}}
volumes:
  - name: config
    configMap:
      name: {{ include "kascade.fullname" . }}-config
  - name: tmp
    emptyDir: {}
{{- end -}}

{{- define "kascade.mounts" -}}
volumeMounts:
  - name: config
    mountPath: /etc/kascade
    readOnly: true
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{- define "kascade.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ add (div (.Values.config.drain_timeout_ms | default 30000 | int) 1000) 15 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
