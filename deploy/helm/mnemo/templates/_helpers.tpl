{{/* Names, labels and shared snippets of the Mnemo chart. */}}

{{- define "mnemo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mnemo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
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

{{/* The Redis password: values, else the one already in the cluster, else a new random one. */}}
{{- define "mnemo.redisPasswordValue" -}}
{{- if .Values.redis.auth.password -}}
{{- .Values.redis.auth.password -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "mnemo.secretName" .) -}}
{{- if and $existing (index ($existing.data | default dict) "redis-password") -}}
{{- index $existing.data "redis-password" | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
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
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "mnemo.secretName" .) -}}
{{- if and $existing (index ($existing.data | default dict) "memory-token") -}}
{{- index $existing.data "memory-token" | b64dec -}}
{{- else -}}
{{- randAlphaNum 40 -}}
{{- end -}}
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
{{- printf "%s default\n" (randAlphaNum 40) -}}
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
