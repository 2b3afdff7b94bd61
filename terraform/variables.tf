# Inputs of the tenantlake module. Every input has a description, a type and
# at least one validation (terraform/terraform_test.go checks it): bad input
# fails at `terraform plan` with a message naming the input, before anything
# is created.

variable "project" {
  description = "Google Cloud project id that holds the deployment (buckets, topics, functions, datasets)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a Google Cloud project id: 6 to 30 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions, the big-read job, the scheduler job, the artifact repository and (unless lake_location is set) the lake bucket, e.g. europe-west1."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1 or us-central1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name the module creates (service accounts, functions, buckets, secrets, the job): 3 to 12 lower-case letters, digits or hyphens."
  type        = string
  default     = "tenantlake"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,10}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3 to 12 lower-case letters, digits or hyphens, starting with a letter and not ending with a hyphen (service account ids are at most 30 characters)."
  }
}

variable "topic_prefix" {
  description = "Prefix of the Pub/Sub topic and subscription names (\"\" gives the names of DESIGN.md: read-requests, snapshots, loads and their -dead-letter topics). The functions are told the names through the TENANTLAKE_TOPIC_* variables."
  type        = string
  default     = ""

  validation {
    condition     = var.topic_prefix == "" || can(regex("^[A-Za-z][A-Za-z0-9._~+-]{0,39}$", var.topic_prefix))
    error_message = "topic_prefix must be empty or start with a letter and hold at most 40 letters, digits or . _ ~ + - characters."
  }
}

variable "labels" {
  description = "Labels set on every resource that takes labels."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.labels : can(regex("^[a-z][a-z0-9_-]{0,62}$", k)) && can(regex("^[a-z0-9_-]{0,63}$", v))
    ])
    error_message = "labels: keys must be 1 to 63 lower-case letters, digits, _ or -, starting with a letter; values at most 63 of the same characters."
  }
}

variable "enable_apis" {
  description = "Enable the Google APIs the deployment uses (Cloud Functions, Cloud Run, Cloud Build, Artifact Registry, Pub/Sub, Cloud Scheduler, Secret Manager, BigQuery, IAM). They are never disabled on destroy."
  type        = bool
  default     = true

  validation {
    condition     = var.enable_apis != null
    error_message = "enable_apis must be true or false."
  }
}

# ---- the lake ----

variable "lake_bucket_name" {
  description = "Name of the lake bucket; \"\" names it <project>-<name_prefix>-lake. Bucket names are global."
  type        = string
  default     = ""

  validation {
    condition     = var.lake_bucket_name == "" || can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.lake_bucket_name))
    error_message = "lake_bucket_name must be empty or 3 to 63 lower-case letters, digits, _ or -, starting and ending with a letter or digit."
  }
}

variable "lake_prefix" {
  description = "Folder inside the lake bucket that holds the lake (TENANTLAKE_LAKE is gs://<bucket>/<lake_prefix>); \"\" puts the lake at the bucket's root."
  type        = string
  default     = "lake"

  validation {
    condition     = var.lake_prefix == "" || can(regex("^[a-z0-9][a-z0-9_/-]{0,200}[a-z0-9]$|^[a-z0-9]$", var.lake_prefix))
    error_message = "lake_prefix must be empty or lower-case letters, digits, _, - and /, neither starting nor ending with /."
  }
}

variable "lake_location" {
  description = "Location of the lake bucket (a region, a dual-region or a multi-region such as EU); \"\" uses region. BigQuery loads straight from the bucket, so a BigQuery target's location must be this location or contain it."
  type        = string
  default     = ""

  validation {
    condition     = var.lake_location == "" || can(regex("^[A-Za-z][A-Za-z0-9-]{1,30}$", var.lake_location))
    error_message = "lake_location must be empty or a GCS location such as EU, US, EUR4 or europe-west1."
  }
}

variable "lake_soft_delete_days" {
  description = "Soft-delete retention of the lake bucket in days: objects deleted by `tenantlake gc` (or by mistake) can be restored for this long. 0 switches soft delete off; otherwise 7 to 90 (the GCS limits)."
  type        = number
  default     = 7

  validation {
    condition     = var.lake_soft_delete_days == 0 || (var.lake_soft_delete_days >= 7 && var.lake_soft_delete_days <= 90 && floor(var.lake_soft_delete_days) == var.lake_soft_delete_days)
    error_message = "lake_soft_delete_days must be 0 (off) or a whole number of days from 7 to 90."
  }
}

variable "lake_nearline_after_days" {
  description = "Move lake objects to the NEARLINE storage class this many days after they were written (snapshots are immutable, so this never rewrites data; replaying an old snapshot then pays Nearline retrieval). 0 keeps everything in STANDARD."
  type        = number
  default     = 0

  validation {
    condition     = var.lake_nearline_after_days == 0 || (var.lake_nearline_after_days >= 30 && floor(var.lake_nearline_after_days) == var.lake_nearline_after_days)
    error_message = "lake_nearline_after_days must be 0 (off) or a whole number of days of at least 30 (Nearline's minimum storage duration)."
  }
}

# ---- the functions ----

variable "source_archive" {
  description = "Path of the function source archive built by `make package` (dist/tenantlake-functions.zip in the repository). It is uploaded under a name derived from its MD5, so a changed archive redeploys every function."
  type        = string

  validation {
    condition     = can(regex("\\.zip$", var.source_archive))
    error_message = "source_archive must be the path of the .zip file `make package` builds."
  }
}

variable "go_runtime" {
  description = "Cloud Functions Go runtime id. It must be at least the go directive of go.mod (go 1.26 → go126)."
  type        = string
  default     = "go126"

  validation {
    condition     = can(regex("^go1[0-9]{2}$", var.go_runtime))
    error_message = "go_runtime must be a Cloud Functions Go runtime id such as go126."
  }
}

variable "function_settings" {
  description = "Per-function overrides of memory, cpu, timeout_seconds, max_instances, min_instances and concurrency (requests per instance), keyed by schedule, read, load, replay or snapshots; unset fields keep the module's defaults (see locals.tf). read and load are pushed from Pub/Sub, whose ack deadline is at most 600 s, so their timeout is at most 600 s."
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    timeout_seconds = optional(number)
    max_instances   = optional(number)
    min_instances   = optional(number)
    concurrency     = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for k, _ in var.function_settings : contains(["schedule", "read", "load", "replay", "snapshots"], k)])
    error_message = "function_settings keys must be schedule, read, load, replay or snapshots."
  }
  validation {
    condition = alltrue([
      for k, s in var.function_settings : s.timeout_seconds == null || try(s.timeout_seconds >= 60 && s.timeout_seconds <= (contains(["read", "load"], k) ? 600 : 3600), false)
    ])
    error_message = "function_settings: timeout_seconds must be 60 to 600 for read and load (the Pub/Sub ack deadline bounds a push) and 60 to 3600 for the HTTP functions."
  }
  validation {
    condition = alltrue([
      for k, s in var.function_settings : (s.max_instances == null || try(s.max_instances >= 1 && s.max_instances <= 1000, false)) && (s.min_instances == null || try(s.min_instances >= 0 && s.min_instances <= 100, false)) && (s.concurrency == null || try(s.concurrency >= 1 && s.concurrency <= 1000, false))
    ])
    error_message = "function_settings: max_instances must be 1 to 1000, min_instances 0 to 100 and concurrency 1 to 1000."
  }
  validation {
    condition = alltrue([
      for k, s in var.function_settings : (s.memory == null || can(regex("^[0-9]+(Mi|Gi)$", s.memory))) && (s.cpu == null || can(regex("^[0-9]+(\\.[0-9]+)?$", s.cpu)))
    ])
    error_message = "function_settings: memory must look like 512Mi or 2Gi and cpu like 1, 2 or 0.583."
  }
}

variable "pipeline_ingress" {
  description = "Ingress of Schedule, Read and Load. ALLOW_INTERNAL_ONLY (the default) admits only traffic from the project's VPC and from Google services in the project, which include Cloud Scheduler and Pub/Sub push."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.pipeline_ingress)
    error_message = "pipeline_ingress must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

variable "analyst_ingress" {
  description = "Ingress of Replay and Snapshots, which analysts call with an identity token (only analysts_group may invoke them, whatever the ingress)."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.analyst_ingress)
    error_message = "analyst_ingress must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector (projects/P/locations/L/connectors/C) the functions and the big-read job use to reach tenant databases and warehouses on private addresses; \"\" for none."
  type        = string
  default     = ""

  validation {
    condition     = var.vpc_connector == "" || can(regex("^projects/[^/]+/locations/[^/]+/connectors/[^/]+$", var.vpc_connector))
    error_message = "vpc_connector must be empty or projects/PROJECT/locations/REGION/connectors/NAME."
  }
}

variable "reads_per_host" {
  description = "TENANTLAKE_READS_PER_HOST: reads one Read instance runs at once against one source host."
  type        = number
  default     = 2

  validation {
    condition     = var.reads_per_host >= 1 && var.reads_per_host <= 1000 && floor(var.reads_per_host) == var.reads_per_host
    error_message = "reads_per_host must be a whole number from 1 to 1000."
  }
}

variable "connections" {
  description = "TENANTLAKE_CONNECTIONS: connections one tenant's read uses, all in the same snapshot."
  type        = number
  default     = 2

  validation {
    condition     = var.connections >= 1 && var.connections <= 1000 && floor(var.connections) == var.connections
    error_message = "connections must be a whole number from 1 to 1000."
  }
}

# ---- tenants, the registry and targets ----

variable "tenants" {
  description = "Tenant ids whose connection strings live in Secret Manager. For each one the module creates the secret <name_prefix>-tenant-<id>-dsn (add its value with gcloud, never through Terraform), lets Read and the big-read job read it and mounts its latest version at /secrets/<id>/dsn: the tenant's registry connection is then file:/secrets/<id>/dsn."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for t in var.tenants : can(regex("^[a-z][a-z0-9_]{0,62}$", t))])
    error_message = "tenants: every id must be a lower-case letter, then up to 62 lower-case letters, digits or _ (tenant.ValidateID)."
  }
}

variable "registry" {
  description = "The tenant registry. kind = \"postgres\": url is a postgres:// URL without a password of a database with a tenant_registry table (read on every call); its password is in the secret <name_prefix>-registry-pgpass (a .pgpass line), mounted at /secrets/_registry/pgpass. kind = \"yaml\": the registry is a YAML document in the secret <name_prefix>-registry-yaml, mounted at /secrets/_registry/registry.yaml and read when an instance starts."
  type = object({
    kind = string
    url  = optional(string, "")
  })
  default = { kind = "yaml" }

  validation {
    condition     = contains(["postgres", "yaml"], var.registry.kind)
    error_message = "registry.kind must be postgres or yaml."
  }
  validation {
    condition     = var.registry.kind == "yaml" ? var.registry.url == "" : can(regex("^postgres(ql)?://[^/?#\\s]+/[^?#\\s]+(\\?\\S*)?$", var.registry.url))
    error_message = "registry.url must be a postgres://host/database URL when kind is postgres, and empty when kind is yaml."
  }
  validation {
    condition     = !can(regex("^[a-z]+://[^/@]*:[^/@]*@", var.registry.url)) && !can(regex("(?i)[?&](password|passfile)=", var.registry.url))
    error_message = "registry.url must not hold a password or a passfile: put the password in the registry-pgpass secret."
  }
}

variable "targets" {
  description = <<-EOT
    The write strategies' targets, keyed by target name (the lake ledger's key, the events' target attribute and the suffix of its snapshots subscription). One Load function and one snapshots subscription are created per entry.
    kind = "postgres": url is the warehouse's postgres://user@host:port/db URL WITHOUT a password; the password is in the secret <name_prefix>-target-<name>-pgpass (a .pgpass line), mounted into that target's Load function only.
    kind = "bigquery": bigquery holds the project (default: project), location, dataset names and the staging tables' expiration; the module creates the staging, ledger and all-tenants datasets and composes the bigquery:// URL from them.
    options: extra URL options, e.g. "profile_check=false" (see `tenantlake load --help`); name, passfile, password and endpoint are set by the module or refused.
  EOT
  type = map(object({
    kind    = string
    url     = optional(string, "")
    options = optional(string, "")
    bigquery = optional(object({
      project                 = optional(string, "")
      location                = optional(string, "EU")
      dataset_template        = optional(string, "tenant_{tenant}")
      staging_dataset         = optional(string, "tenantlake_staging")
      ledger_dataset          = optional(string, "tenantlake_ledger")
      all_tenants_dataset     = optional(string, "all_tenants")
      staging_expiration_days = optional(number, 7)
    }), {})
  }))

  validation {
    condition     = length(var.targets) >= 1
    error_message = "targets must name at least one target."
  }
  validation {
    condition     = alltrue([for k, _ in var.targets : can(regex("^[a-z]([a-z0-9_]{0,10}[a-z0-9])?$", k))])
    error_message = "targets: every name must be 1 to 12 lower-case letters, digits or _, starting with a letter and not ending with _ (it becomes part of a service account id and a function name)."
  }
  validation {
    condition     = alltrue([for _, t in var.targets : contains(["postgres", "bigquery"], t.kind)])
    error_message = "targets: kind must be postgres or bigquery."
  }
  validation {
    condition = alltrue([
      for _, t in var.targets : t.kind == "bigquery" ? t.url == "" : can(regex("^postgres(ql)?://[^/?#\\s]+/[^?#\\s]+(\\?\\S*)?$", t.url))
    ])
    error_message = "targets: a postgres target needs url = postgres://user@host:port/database; a bigquery target takes no url (it is composed from its bigquery settings)."
  }
  validation {
    condition = alltrue([
      for _, t in var.targets : !can(regex("^[a-z]+://[^/@]*:[^/@]*@", t.url)) && !can(regex("(?i)(^|[?&])(password|passfile|name|endpoint)=", t.url)) && !can(regex("(?i)(^|&)(password|passfile|name|endpoint)=", t.options))
    ])
    error_message = "targets: url and options must not hold a password, passfile, name or endpoint: passwords go in the target's pgpass secret, the name is the map key."
  }
  validation {
    condition = alltrue([
      for _, t in var.targets : t.options == "" || can(regex("^[a-z_]+=[^&=\\s]*(&[a-z_]+=[^&=\\s]*)*$", t.options))
    ])
    error_message = "targets: options must be key=value pairs joined by &, e.g. profile_check=false&schema_check=false."
  }
  validation {
    condition = alltrue([
      for _, t in var.targets : alltrue([
        for d in [t.bigquery.staging_dataset, t.bigquery.ledger_dataset, t.bigquery.all_tenants_dataset] : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", d)) && length(d) <= 1024
      ]) && length(distinct([t.bigquery.staging_dataset, t.bigquery.ledger_dataset, t.bigquery.all_tenants_dataset])) == 3 && strcontains(t.bigquery.dataset_template, "{tenant}") && can(regex("^[A-Za-z_][A-Za-z0-9_{}]*$", t.bigquery.dataset_template)) && (t.bigquery.project == "" || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", t.bigquery.project))) && can(regex("^[A-Za-z][A-Za-z0-9-]{1,30}$", t.bigquery.location))
    ])
    error_message = "targets: bigquery dataset names must be letters, digits and _ and distinct, dataset_template must contain {tenant}, project must be empty or a project id, location a BigQuery location such as EU or europe-west1."
  }
  validation {
    condition = alltrue([
      for _, t in var.targets : t.bigquery.staging_expiration_days >= 1 && t.bigquery.staging_expiration_days <= 365 && floor(t.bigquery.staging_expiration_days) == t.bigquery.staging_expiration_days
    ])
    error_message = "targets: bigquery.staging_expiration_days must be a whole number of days from 1 to 365."
  }
}

# ---- who may call what ----

variable "analysts_group" {
  description = "Email of the Google group whose members may invoke Replay and Snapshots (roles/run.invoker on those two functions only)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$", var.analysts_group))
    error_message = "analysts_group must be the email address of a Google group, e.g. data-analysts@example.com."
  }
}

# ---- Pub/Sub delivery ----

variable "max_delivery_attempts" {
  description = "Deliveries of a message to Read or Load (or to a loads-watch consumer) before Pub/Sub moves it to the topic's dead-letter topic."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100 (the Pub/Sub limits)."
  }
}

variable "push_retry_backoff" {
  description = "Retry policy of every subscription with a dead-letter policy: the minimum and maximum backoff in seconds between deliveries of a message that failed."
  type = object({
    min_seconds = number
    max_seconds = number
  })
  default = { min_seconds = 10, max_seconds = 600 }

  validation {
    condition     = var.push_retry_backoff.min_seconds >= 0 && var.push_retry_backoff.max_seconds <= 600 && var.push_retry_backoff.min_seconds <= var.push_retry_backoff.max_seconds
    error_message = "push_retry_backoff: min_seconds and max_seconds must be 0 to 600 seconds, min_seconds at most max_seconds."
  }
}

# ---- the daily schedule ----

variable "schedule" {
  description = "Cloud Scheduler cron expression of the daily read (in time_zone)."
  type        = string
  default     = "0 2 * * *"

  validation {
    condition     = can(regex("^\\S+ \\S+ \\S+ \\S+ \\S+$", var.schedule))
    error_message = "schedule must be a five-field cron expression such as \"0 2 * * *\"."
  }
}

variable "time_zone" {
  description = "Time zone of schedule (an IANA tz database name)."
  type        = string
  default     = "Etc/UTC"

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+){0,2}$", var.time_zone))
    error_message = "time_zone must be an IANA time zone such as Etc/UTC or Europe/Berlin."
  }
}

variable "schedule_attempt_deadline_seconds" {
  description = "How long Cloud Scheduler waits for Schedule (which only publishes one read request per tenant) before it counts the attempt as failed and retries."
  type        = number
  default     = 320

  validation {
    condition     = var.schedule_attempt_deadline_seconds >= 15 && var.schedule_attempt_deadline_seconds <= 1800 && floor(var.schedule_attempt_deadline_seconds) == var.schedule_attempt_deadline_seconds
    error_message = "schedule_attempt_deadline_seconds must be a whole number from 15 to 1800 (Cloud Scheduler's limit for HTTP targets is 30 minutes)."
  }
}

variable "schedule_retry_count" {
  description = "Retries of a failed Schedule call. Schedule publishes only the requests not published yet, so a retry never duplicates a read."
  type        = number
  default     = 3

  validation {
    condition     = var.schedule_retry_count >= 0 && var.schedule_retry_count <= 5 && floor(var.schedule_retry_count) == var.schedule_retry_count
    error_message = "schedule_retry_count must be a whole number from 0 to 5."
  }
}

# ---- the big-read Cloud Run job ----

variable "big_read" {
  description = "The Cloud Run job that reads tenants too big for a function (`tenantlake read-job`). image is the tenantlake container image; \"\" creates no job and keeps every read in the Read function. tenant_bytes > 0 sends tenants larger than that to the job (TENANTLAKE_BIG_TENANT_BYTES). task_count, parallelism (0: as many as possible), timeout_seconds per task and max_retries per task configure each execution."
  type = object({
    image           = optional(string, "")
    tenant_bytes    = optional(number, 0)
    task_count      = optional(number, 1)
    parallelism     = optional(number, 1)
    timeout_seconds = optional(number, 21600)
    max_retries     = optional(number, 1)
    memory          = optional(string, "2Gi")
    cpu             = optional(string, "1")
  })
  default = {}

  validation {
    condition     = var.big_read.tenant_bytes >= 0 && (var.big_read.tenant_bytes == 0 || var.big_read.image != "")
    error_message = "big_read: tenant_bytes must be 0 or more, and sending tenants to the job (tenant_bytes > 0) needs big_read.image."
  }
  validation {
    condition     = var.big_read.image == "" || can(regex("^[a-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$", var.big_read.image))
    error_message = "big_read.image must be empty or a container image reference with a tag or digest, e.g. europe-west1-docker.pkg.dev/P/R/tenantlake:1.0."
  }
  validation {
    condition     = var.big_read.task_count >= 1 && var.big_read.task_count <= 10000 && var.big_read.parallelism >= 0 && var.big_read.parallelism <= var.big_read.task_count && floor(var.big_read.task_count) == var.big_read.task_count && floor(var.big_read.parallelism) == var.big_read.parallelism
    error_message = "big_read: task_count must be 1 to 10000 and parallelism 0 to task_count (whole numbers)."
  }
  validation {
    condition     = var.big_read.timeout_seconds >= 600 && var.big_read.timeout_seconds <= 604800 && var.big_read.max_retries >= 0 && var.big_read.max_retries <= 10
    error_message = "big_read: timeout_seconds must be 600 to 604800 (7 days) and max_retries 0 to 10."
  }
  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.big_read.memory)) && can(regex("^[0-9]+(\\.[0-9]+)?$", var.big_read.cpu))
    error_message = "big_read: memory must look like 2Gi and cpu like 1 or 2."
  }
}
