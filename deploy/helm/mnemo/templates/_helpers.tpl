{{/* Names, labels and shared snippets of the Mnemo chart. */}}

{{- define "mnemo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object name. At most 43 characters, so that the longest suffix
     (-test-memory-health, 19) stays within Kubernetes' 63 and a StatefulSet's name within
     52 (its controller-revision-hash label adds 11). A longer one is cut to 36 characters
     plus "-" and 6 hex digits of its sha256: distinct long names stay distinct. */}}
{{- define "mnemo.fullname" -}}
{{- $full := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $full = .Values.fullnameOverride -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- $full = .Release.Name -}}
{{- else -}}
{{- $full = printf "%s-%s" .Release.Name $name -}}
{{- end -}}
{{- end -}}
{{- if gt (len $full) 43 -}}
{{- printf "%s-%s" ($full | trunc 36 | trimSuffix "-") ($full | sha256sum | trunc 6) -}}
{{- else -}}
{{- $full | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mnemo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "mnemo.labels" -}}
helm.sh/chart: {{ include "mnemo.chart" .ctx }}
{{ include "mnemo.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: mnemo
{{- end -}}

{{/* Selector labels: name + instance, and the component so Deployments don't overlap. */}}
{{- define "mnemo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mnemo.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "mnemo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mnemo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* image reference; call with (dict "ctx" $ "image" .Values.gateway.image) */}}
{{- define "mnemo.image" -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag -}}
{{- if .ctx.Values.image.registry -}}
{{- printf "%s/%s:%s" .ctx.Values.image.registry .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "mnemo.secretName" -}}{{ include "mnemo.fullname" . }}{{- end -}}
{{- define "mnemo.memoryServiceName" -}}{{ include "mnemo.fullname" . }}-memory{{- end -}}
{{- define "mnemo.redisName" -}}{{ include "mnemo.fullname" . }}-redis{{- end -}}
{{- define "mnemo.chromaName" -}}{{ include "mnemo.fullname" . }}-chroma{{- end -}}

{{/* Secret + key of the Redis password (in-cluster Redis). */}}
{{- define "mnemo.redisPasswordSecret" -}}
{{- default (include "mnemo.secretName" .) .Values.redis.auth.existingSecret -}}
{{- end -}}
{{- define "mnemo.redisPasswordKey" -}}
{{- if .Values.redis.auth.existingSecret -}}{{ .Values.redis.auth.existingSecretPasswordKey }}{{- else -}}redis-password{{- end -}}
{{- end -}}

{{/* A credential the chart generates: the one already in the release's Secret (lookup),
     else, on a live cluster (a fresh install), a new random one. Without a cluster (helm
     template, ArgoCD, helm lint: lookup answers nothing) a random value would differ on every
     render and break auth at the next restart, so the chart refuses (credentials.offline=fail)
     naming what to set, or makes a throw-away one (credentials.offline=random).
     Call with (dict "ctx" $ "key" "redis-password" "length" 32 "set" "redis.auth.existingSecret or redis.auth.password"). */}}
{{- define "mnemo.generated" -}}
{{- $ctx := .ctx -}}
{{- $existing := lookup "v1" "Secret" $ctx.Release.Namespace (include "mnemo.secretName" $ctx) -}}
{{- if and $existing (index ($existing.data | default dict) .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- /* a live cluster: the namespace's default ServiceAccount (namespaced RBAC suffices), or,
     for a namespace helm install --create-namespace has yet to create, kube-system */ -}}
{{- else if or (eq $ctx.Values.credentials.offline "random") (lookup "v1" "ServiceAccount" $ctx.Release.Namespace "default") (lookup "v1" "Namespace" "" "kube-system") -}}
{{- randAlphaNum (int .length) -}}
{{- else -}}
{{- /* required, not fail: helm lint (lint mode) reports the chart's checks, not this
     render-time refusal; helm template and ArgoCD stop here */ -}}
{{- required (printf "%s: the chart would generate it, but this render has no cluster to keep it in (helm template, ArgoCD, helm lint: lookup finds no Secret %s), so it would change on every render and break auth at the next restart. Set %s (docs/deploy.md, GitOps), render with helm install/upgrade, or set credentials.offline=random for a throw-away render" .key (include "mnemo.secretName" $ctx) .set) "" -}}
{{- end -}}
{{- end -}}

{{/* The Redis password: values, else the one already in the cluster, else a new random one. */}}
{{- define "mnemo.redisPasswordValue" -}}
{{- if .Values.redis.auth.password -}}
{{- .Values.redis.auth.password -}}
{{- else -}}
{{- include "mnemo.generated" (dict "ctx" . "key" "redis-password" "length" 32 "set" "redis.auth.existingSecret (or redis.auth.password)") -}}
{{- end -}}
{{- end -}}

{{/* Secret + key of the memory gRPC token (SERVER__AUTH_TOKEN / GATEWAY__MEMORY_TOKEN). */}}
{{- define "mnemo.memoryTokenSecret" -}}
{{- default (include "mnemo.secretName" .) .Values.memory.auth.existingSecret -}}
{{- end -}}
{{- define "mnemo.memoryTokenKey" -}}
{{- if .Values.memory.auth.existingSecret -}}{{ .Values.memory.auth.existingSecretKey }}{{- else -}}memory-token{{- end -}}
{{- end -}}

{{/* The memory token: values, else the one already in the cluster, else a new random one. */}}
{{- define "mnemo.memoryTokenValue" -}}
{{- if .Values.memory.auth.token -}}
{{- .Values.memory.auth.token -}}
{{- else -}}
{{- include "mnemo.generated" (dict "ctx" . "key" "memory-token" "length" 40 "set" "memory.auth.existingSecret (or memory.auth.token)") -}}
{{- end -}}
{{- end -}}

{{/* The memory token as env var NAME (memory: SERVER__AUTH_TOKEN, gateway:
     GATEWAY__MEMORY_TOKEN). Call with (dict "ctx" $ "name" "SERVER__AUTH_TOKEN"). */}}
{{- define "mnemo.memoryTokenEnv" -}}
{{- if .ctx.Values.memory.auth.enabled }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "mnemo.memoryTokenSecret" .ctx }}
      key: {{ include "mnemo.memoryTokenKey" .ctx }}
{{- end }}
{{- end -}}

{{/* gRPC and /metrics bind the pod IP (bindPodIP): env vars NAMES from the downward API. */}}
{{- define "mnemo.bindEnv" -}}
{{- if .ctx.Values.bindPodIP }}
{{- range .names }}
- name: {{ . }}
  valueFrom:
    fieldRef: {fieldPath: status.podIP}
{{- end }}
{{- end }}
{{- end -}}

{{- define "mnemo.memoryTokenInput" -}}
{{- if .Values.memory.auth.enabled -}}
{{- if .Values.memory.auth.existingSecret -}}
memory-token: secret {{ .Values.memory.auth.existingSecret }}/{{ .Values.memory.auth.existingSecretKey }}
{{- else if .Values.memory.auth.token -}}
memory-token: value {{ .Values.memory.auth.token }}
{{- else -}}
memory-token: generated
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The API keys file: values, else the one in the cluster, else one random key. */}}
{{- define "mnemo.apiKeysValue" -}}
{{- if .Values.gateway.auth.apiKeys -}}
{{- .Values.gateway.auth.apiKeys -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "mnemo.secretName" .) -}}
{{- if and $existing (index ($existing.data | default dict) "api-keys") -}}
{{- index $existing.data "api-keys" | b64dec -}}
{{- else -}}
{{- printf "%s default\n" (include "mnemo.generated" (dict "ctx" . "key" "api-keys" "length" 40 "set" "gateway.auth.existingSecret (or gateway.auth.apiKeys)")) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mnemo.anthropicSecret" -}}
{{- default (include "mnemo.secretName" .) .Values.llm.anthropic.existingSecret -}}
{{- end -}}
{{- define "mnemo.anthropicKey" -}}
{{- if .Values.llm.anthropic.existingSecret -}}{{ .Values.llm.anthropic.existingSecretKey }}{{- else -}}anthropic-api-key{{- end -}}
{{- end -}}
{{- define "mnemo.hasAnthropicKey" -}}
{{- if or .Values.llm.anthropic.apiKey .Values.llm.anthropic.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "mnemo.openaiSecret" -}}
{{- default (include "mnemo.secretName" .) .Values.llm.openai.existingSecret -}}
{{- end -}}
{{- define "mnemo.openaiKey" -}}
{{- if .Values.llm.openai.existingSecret -}}{{ .Values.llm.openai.existingSecretKey }}{{- else -}}openai-api-key{{- end -}}
{{- end -}}
{{- define "mnemo.hasOpenaiKey" -}}
{{- if or .Values.llm.openai.apiKey .Values.llm.openai.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "mnemo.gatewayAuthSecret" -}}
{{- default (include "mnemo.secretName" .) .Values.gateway.auth.existingSecret -}}
{{- end -}}

{{- define "mnemo.externalRedisSecret" -}}
{{- default (include "mnemo.secretName" .) .Values.externalRedis.existingSecret -}}
{{- end -}}
{{- define "mnemo.externalRedisKey" -}}
{{- if .Values.externalRedis.existingSecret -}}{{ .Values.externalRedis.existingSecretUrlKey }}{{- else -}}redis-url{{- end -}}
{{- end -}}

{{/* Secret env of processes that talk to Redis (memory service, worker). */}}
{{- define "mnemo.redisSecretEnv" -}}
{{- if .Values.redis.enabled }}
{{- if .Values.redis.auth.enabled }}
- name: REDIS__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "mnemo.redisPasswordSecret" . }}
      key: {{ include "mnemo.redisPasswordKey" . }}
{{- end }}
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "mnemo.externalRedisSecret" . }}
      key: {{ include "mnemo.externalRedisKey" . }}
{{- end }}
{{- if include "mnemo.externalChromaToken" . }}
- name: VECTOR__CHROMA_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalChroma.existingSecret }}
      key: {{ .Values.externalChroma.existingSecretKey }}
{{- end }}
{{- end -}}

{{/* "true" when the memory service and worker send a token to an external Chroma. */}}
{{- define "mnemo.externalChromaToken" -}}
{{- if and (eq .Values.vector.backend "chroma") (not .Values.chroma.enabled) .Values.externalChroma.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* LLM credentials of the processes that call the model (gateway, worker). */}}
{{- define "mnemo.llmSecretEnv" -}}
{{- if include "mnemo.hasAnthropicKey" . }}
- name: ANTHROPIC_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "mnemo.anthropicSecret" . }}
      key: {{ include "mnemo.anthropicKey" . }}
{{- end }}
{{- if include "mnemo.hasOpenaiKey" . }}
- name: LLM__OPENAI_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "mnemo.openaiSecret" . }}
      key: {{ include "mnemo.openaiKey" . }}
{{- end }}
{{- end -}}

{{/* Soft spread over zones and nodes; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "mnemo.topologySpread" -}}
{{- if .ctx.Values.topologySpread.enabled }}
topologySpreadConstraints:
{{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: {{ $.ctx.Values.topologySpread.maxSkew }}
    topologyKey: {{ $key }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "mnemo.selectorLabels" (dict "ctx" $.ctx "component" $.component) | nindent 8 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Checks that stop a release which would lose data or cannot start. */}}
{{- define "mnemo.validate" -}}
{{- if and .Values.redis.enabled (not (eq .Values.redis.config.maxmemoryPolicy "noeviction")) -}}
{{- fail (printf "redis.config.maxmemoryPolicy=%s can evict the job stream or user preferences; only noeviction is supported (docs/adr/0008-redis-eviction-and-job-durability.md)" .Values.redis.config.maxmemoryPolicy) -}}
{{- end -}}
{{- if .Values.redis.enabled -}}
{{- include "mnemo.validateRedisConfig" . -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.url) (not .Values.externalRedis.existingSecret) -}}
{{- fail "redis.enabled=false needs externalRedis.url or externalRedis.existingSecret" -}}
{{- end -}}
{{- if and (eq .Values.vector.backend "chroma") (not .Values.chroma.enabled) (not .Values.externalChroma.url) -}}
{{- fail "vector.backend=chroma with chroma.enabled=false needs externalChroma.url" -}}
{{- end -}}
{{- if eq (int .Values.gateway.metricsPort) (int .Values.gateway.port) -}}
{{- fail "gateway.metricsPort must differ from gateway.port: /metrics gets a port of its own, off the one the Ingress routes" -}}
{{- end -}}
{{- if le (int .Values.memory.terminationGracePeriodSeconds) (int .Values.memory.graceS) -}}
{{- fail "memory.terminationGracePeriodSeconds must exceed memory.graceS (the gRPC drain)" -}}
{{- end -}}
{{- if and (eq .Values.llm.provider "openai-compatible") (or (not .Values.llm.openaiBaseUrl) (not .Values.llm.openai.chatModel)) -}}
{{- fail "llm.provider=openai-compatible needs llm.openaiBaseUrl and llm.openai.chatModel (LLM__OPENAI_BASE_URL, LLM__OPENAI_CHAT_MODEL); the gateway and worker refuse to start without them" -}}
{{- end -}}
{{- if and (eq .Values.gateway.auth.mode "jwt") (not .Values.gateway.auth.jwtSecret) (not .Values.gateway.auth.existingSecret) -}}
{{- fail "gateway.auth.mode=jwt needs gateway.auth.jwtSecret or gateway.auth.existingSecret" -}}
{{- end -}}
{{- if and (eq .Values.gateway.auth.mode "none") (eq .Values.config.environment "prod") -}}
{{- fail "gateway.auth.mode=none is refused by the gateway when config.environment=prod; use api-key or jwt, or environment dev/test" -}}
{{- end -}}
{{- end -}}

{{/* What decides a credential a process reads at start (an env var from a Secret): the value
     given in values, the existingSecret reference, or "generated" for a chart-generated
     value (it is kept across upgrades, so it never changes behind the checksum's back).
     Rotating the content of an existingSecret rolls nothing: `kubectl rollout restart`. */}}
{{- define "mnemo.redisPasswordInput" -}}
{{- if and .Values.redis.enabled .Values.redis.auth.enabled -}}
{{- if .Values.redis.auth.existingSecret -}}
redis-password: secret {{ .Values.redis.auth.existingSecret }}/{{ .Values.redis.auth.existingSecretPasswordKey }}
{{- else if .Values.redis.auth.password -}}
redis-password: value {{ .Values.redis.auth.password }}
{{- else -}}
redis-password: generated
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "mnemo.storeCredentialsInput" -}}
{{ include "mnemo.redisPasswordInput" . }}
{{- if not .Values.redis.enabled }}
{{- if .Values.externalRedis.existingSecret }}
redis-url: secret {{ .Values.externalRedis.existingSecret }}/{{ .Values.externalRedis.existingSecretUrlKey }}
{{- else }}
redis-url: value {{ .Values.externalRedis.url }}
{{- end }}
{{- end }}
{{- if include "mnemo.externalChromaToken" . }}
chroma-token: secret {{ .Values.externalChroma.existingSecret }}/{{ .Values.externalChroma.existingSecretKey }}
{{- end }}
{{- end -}}

{{- define "mnemo.llmCredentialsInput" -}}
{{- if .Values.llm.anthropic.existingSecret }}
anthropic-api-key: secret {{ .Values.llm.anthropic.existingSecret }}/{{ .Values.llm.anthropic.existingSecretKey }}
{{- else }}
anthropic-api-key: value {{ .Values.llm.anthropic.apiKey }}
{{- end }}
{{- if .Values.llm.openai.existingSecret }}
openai-api-key: secret {{ .Values.llm.openai.existingSecret }}/{{ .Values.llm.openai.existingSecretKey }}
{{- else }}
openai-api-key: value {{ .Values.llm.openai.apiKey }}
{{- end }}
{{- end -}}

{{/* The gateway reads jwt-secret at start; the api-keys file it re-reads when the mounted
     Secret changes, so a key rotation needs no restart and is not part of the checksum. */}}
{{- define "mnemo.gatewayCredentialsInput" -}}
{{- if eq .Values.gateway.auth.mode "jwt" -}}
{{- if .Values.gateway.auth.existingSecret -}}
jwt-secret: secret {{ .Values.gateway.auth.existingSecret }}/jwt-secret
{{- else -}}
jwt-secret: value {{ .Values.gateway.auth.jwtSecret }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* checksum/config of a workload: a hash of exactly what its pods read at start (their
     ConfigMaps and credentials), so a change rolls those pods and no others. A gateway
     setting or an API key never restarts Redis; redis.config.* restarts only Redis.
     Call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "mnemo.checksum" -}}
{{- $ctx := .ctx -}}
{{- $parts := list -}}
{{- if eq .component "redis" -}}
{{- $parts = list (include "mnemo.redis.configMap" $ctx) (include "mnemo.redisPasswordInput" $ctx) -}}
{{- else if eq .component "gateway" -}}
{{- $parts = list (include "mnemo.configMap.shared" $ctx) (include "mnemo.configMap.gateway" $ctx) (include "mnemo.llmCredentialsInput" $ctx) (include "mnemo.gatewayCredentialsInput" $ctx) (include "mnemo.memoryTokenInput" $ctx) -}}
{{- else if eq .component "memory" -}}
{{- $parts = list (include "mnemo.configMap.shared" $ctx) (include "mnemo.configMap.memory" $ctx) (include "mnemo.storeCredentialsInput" $ctx) (include "mnemo.memoryTokenInput" $ctx) -}}
{{- else if eq .component "worker" -}}
{{- $parts = list (include "mnemo.configMap.shared" $ctx) (include "mnemo.configMap.memory" $ctx) (include "mnemo.storeCredentialsInput" $ctx) (include "mnemo.llmCredentialsInput" $ctx) -}}
{{- else -}}
{{- fail (printf "mnemo.checksum: unknown component %s" .component) -}}
{{- end -}}
{{- join "\n---\n" $parts | sha256sum -}}
{{- end -}}

{{/* Bytes of a redis.conf memory value (1gb, 512mb, 100k, 1073741824; case-insensitive:
     k/m/g = 1000^n, kb/mb/gb = 1024^n, as redis.conf reads them). */}}
{{- define "mnemo.redisBytes" -}}
{{- $v := lower (toString .) | trim -}}
{{- $m := regexFind "^[0-9]+" $v -}}
{{- $unit := trimPrefix $m $v -}}
{{- $mult := dict "" 1 "b" 1 "k" 1000 "kb" 1024 "m" 1000000 "mb" 1048576 "g" 1000000000 "gb" 1073741824 -}}
{{- if or (not $m) (not (hasKey $mult $unit)) -}}
{{- fail (printf "redis.config.maxmemory=%q is not a redis.conf memory size (e.g. 2gb, 512mb)" (toString .)) -}}
{{- end -}}
{{- mul (int64 $m) (index $mult $unit) -}}
{{- end -}}

{{/* Bytes of a Kubernetes quantity (3Gi, 512Mi, 2G, 1500000000). */}}
{{- define "mnemo.k8sBytes" -}}
{{- $v := toString . | trim -}}
{{- $m := regexFind "^[0-9]+" $v -}}
{{- $unit := trimPrefix $m $v -}}
{{- $mult := dict "" 1 "k" 1000 "Ki" 1024 "M" 1000000 "Mi" 1048576 "G" 1000000000 "Gi" 1073741824 "T" 1000000000000 "Ti" 1099511627776 -}}
{{- if or (not $m) (not (hasKey $mult $unit)) -}}
{{- fail (printf "redis.resources.limits.memory=%q is not a whole-number memory quantity (e.g. 3Gi)" $v) -}}
{{- end -}}
{{- mul (int64 $m) (index $mult $unit) -}}
{{- end -}}

{{/* redis.conf directives that carry the chart's guarantees (durability: AOF, RDB, the data
     directory; no eviction; the port, auth and modules the probes and clients rely on):
     redis.config.extra may not set them. */}}
{{- define "mnemo.redisGuardedDirectives" -}}
appendonly appendfsync save dir dbfilename appendfilename appenddirname maxmemory maxmemory-policy port bind requirepass include loadmodule rename-command protected-mode
{{- end -}}

{{- define "mnemo.validateRedisConfig" -}}
{{- $guarded := splitList " " (include "mnemo.redisGuardedDirectives" .) -}}
{{- range $line := splitList "\n" (toString .Values.redis.config.extra) -}}
{{- $directive := lower (first (splitList " " (trim $line | replace "\t" " "))) | trimAll "\"'" -}}
{{- if and $directive (not (hasPrefix "#" $directive)) (has $directive $guarded) -}}
{{- if eq $directive "maxmemory-policy" -}}
{{- fail (printf "redis.config.extra sets maxmemory-policy (%q): only noeviction is supported, an evicting policy can drop the job stream or user preferences (docs/adr/0008-redis-eviction-and-job-durability.md); remove the line" (trim $line)) -}}
{{- end -}}
{{- fail (printf "redis.config.extra sets %s (%q), which the chart owns (durability, eviction, auth or modules); use redis.config.* / redis.auth.* / redis.search.* instead of extra" $directive (trim $line)) -}}
{{- end -}}
{{- end -}}
{{- $max := include "mnemo.redisBytes" .Values.redis.config.maxmemory | int64 -}}
{{- if le $max 0 -}}
{{- fail "redis.config.maxmemory must be above 0: 0 means no limit, so Redis grows until the container is OOM-killed and the memory alerts (a fraction of maxmemory) never fire" -}}
{{- end -}}
{{- $limit := .Values.redis.resources.limits.memory | default "" -}}
{{- if not $limit -}}
{{- fail "redis.resources.limits.memory is required: it must exceed redis.config.maxmemory (an AOF rewrite forks)" -}}
{{- end -}}
{{- if ge $max (include "mnemo.k8sBytes" $limit | int64) -}}
{{- fail (printf "redis.config.maxmemory=%s must be below the container memory limit redis.resources.limits.memory=%s (leave room for the AOF rewrite fork and buffers), or the kubelet OOM-kills Redis before maxmemory refuses writes" (toString .Values.redis.config.maxmemory) $limit) -}}
{{- end -}}
{{- end -}}
