{{/*
Chart name, cut to 63 characters because Kubernetes label values are.
*/}}
{{- define "trainhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: the release name, with the chart name
appended unless the release name already contains it.
*/}}
{{- define "trainhook.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "trainhook.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "trainhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trainhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "trainhook.labels" -}}
helm.sh/chart: {{ include "trainhook.chart" . }}
{{ include "trainhook.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "trainhook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "trainhook.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false: name the existing ServiceAccount to run trainhook as" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret that holds the webhook secret.
*/}}
{{- define "trainhook.webhookSecretName" -}}
{{- .Values.webhook.secret.existingSecret | default (printf "%s-webhook" (include "trainhook.fullname" .)) }}
{{- end }}

{{/*
Key of the previous webhook secret: `previousKey`, or in the Secret the chart
creates from `previousValue`, a fixed key.
*/}}
{{- define "trainhook.webhookPreviousKey" -}}
{{- $secret := .Values.webhook.secret }}
{{- if $secret.previousKey }}
{{- $secret.previousKey }}
{{- else if and (not $secret.existingSecret) $secret.previousValue }}
{{- print "previous-webhook-secret" }}
{{- end }}
{{- end }}

{{/*
Name of the Secret that holds the Labelbox API key, empty when none is
configured.
*/}}
{{- define "trainhook.labelboxSecretName" -}}
{{- if .Values.labelbox.apiKey.existingSecret }}
{{- .Values.labelbox.apiKey.existingSecret }}
{{- else if .Values.labelbox.apiKey.value }}
{{- printf "%s-labelbox" (include "trainhook.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Rules that trainhook needs in every namespace it watches. Each verb is one
that the code calls:
- trainingruns: the webhook creates and reads runs, the controller watches
  them and patches their finalizer;
- trainingruns/status: the controller writes status by server-side apply;
- trainingtemplates: the webhook lists them for GET /models, and the
  controller reads a run's template by name or looks it up by model type;
- jobs: the controller creates a run's Job, watches and lists Jobs, and
  patches a Job to remove trainhook's finalizer from it;
- pods: the controller watches the pods of its Jobs to see the training
  container start;
- events: the controller records Events on runs.
*/}}
{{- define "trainhook.watchRules" -}}
- apiGroups: ["trainhook.dev"]
  resources: ["trainingruns"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["trainhook.dev"]
  resources: ["trainingruns/status"]
  verbs: ["patch"]
- apiGroups: ["trainhook.dev"]
  resources: ["trainingtemplates"]
  verbs: ["get", "list"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
