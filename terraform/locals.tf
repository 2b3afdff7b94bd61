# Names and environments, in one place. The names of the functions' entry
# points, topics, subscriptions and environment variables are those of the Go
# package config (github.com/tenantlake/tenantlake/config); the test in
# terraform_test.go evaluates these locals and compares them with it.

locals {
  labels = merge({ app = "tenantlake" }, var.labels)

  lake_bucket = var.lake_bucket_name != "" ? var.lake_bucket_name : "${var.project}-${var.name_prefix}-lake"
  lake_url    = var.lake_prefix == "" ? "gs://${local.lake_bucket}" : "gs://${local.lake_bucket}/${var.lake_prefix}"

  # config.Default* and config.DeadLetterSuffix, behind topic_prefix.
  topics = {
    read_requests             = "${var.topic_prefix}read-requests"
    snapshots                 = "${var.topic_prefix}snapshots"
    loads                     = "${var.topic_prefix}loads"
    read_requests_dead_letter = "${var.topic_prefix}read-requests-dead-letter"
    snapshots_dead_letter     = "${var.topic_prefix}snapshots-dead-letter"
    loads_dead_letter         = "${var.topic_prefix}loads-dead-letter"
  }

  # config.ReadSubscription, LoadSubscription, LoadsSubscription and
  # DeadLetterSubscription.
  subscriptions = {
    read        = "${local.topics.read_requests}-read"
    load        = { for k, _ in var.targets : k => "${local.topics.snapshots}-load-${k}" }
    loads_watch = "${local.topics.loads}-watch"
    keep = {
      read_requests_dead_letter = "${local.topics.read_requests_dead_letter}-keep"
      snapshots_dead_letter     = "${local.topics.snapshots_dead_letter}-keep"
      loads_dead_letter         = "${local.topics.loads_dead_letter}-keep"
    }
  }

  # config.LoadFilter: events aimed at no target, or at this one.
  load_filters = { for k, _ in var.targets : k => "NOT attributes:target OR attributes.target = \"${k}\"" }

  # config.Function*: the entry points the functions package registers.
  entry_points = {
    schedule  = "Schedule"
    read      = "Read"
    load      = "Load"
    replay    = "Replay"
    snapshots = "Snapshots"
  }

  names = {
    schedule      = "${var.name_prefix}-schedule"
    read          = "${var.name_prefix}-read"
    load          = { for k, _ in var.targets : k => "${var.name_prefix}-load-${replace(k, "_", "-")}" }
    replay        = "${var.name_prefix}-replay"
    snapshots     = "${var.name_prefix}-snapshots"
    big_read_job  = "${var.name_prefix}-big-read"
    scheduler_job = "${var.name_prefix}-daily-read"
    sources       = "${var.project}-${var.name_prefix}-sources"
    repository    = "${var.name_prefix}-functions"
  }

  # Function defaults, overridden field by field by var.function_settings.
  # Read and Load serve one tenant per instance at a time (concurrency 1):
  # a read holds `connections` database connections and streams Parquet, a
  # load streams parts; Pub/Sub ordering sends one message per tenant at a
  # time anyway. Their timeout stays under the 600 s ack deadline.
  function_defaults = {
    schedule  = { memory = "256Mi", cpu = "0.167", timeout_seconds = 300, max_instances = 2, min_instances = 0, concurrency = 1 }
    read      = { memory = "1Gi", cpu = "1", timeout_seconds = 540, max_instances = 20, min_instances = 0, concurrency = 1 }
    load      = { memory = "1Gi", cpu = "1", timeout_seconds = 540, max_instances = 10, min_instances = 0, concurrency = 1 }
    replay    = { memory = "256Mi", cpu = "0.167", timeout_seconds = 60, max_instances = 2, min_instances = 0, concurrency = 1 }
    snapshots = { memory = "512Mi", cpu = "1", timeout_seconds = 60, max_instances = 4, min_instances = 0, concurrency = 8 }
  }
  fn = {
    for f, d in local.function_defaults : f => {
      for a, v in d : a => try(coalesce(var.function_settings[f][a], v), v)
    }
  }

  # ---- secrets, mounted as files ----
  # Mount paths: /secrets/<tenant> for tenants (tenant ids start with a
  # letter), /secrets/_registry and /secrets/_target for the module's own.
  registry_secret_file = var.registry.kind == "yaml" ? "registry.yaml" : "pgpass"
  registry_mount = {
    registry = {
      mount_path = "/secrets/_registry"
      path       = local.registry_secret_file
      secret     = "${var.name_prefix}-registry-${var.registry.kind == "yaml" ? "yaml" : "pgpass"}"
    }
  }
  registry_ref = var.registry.kind == "yaml" ? "/secrets/_registry/registry.yaml" : "${var.registry.url}${strcontains(var.registry.url, "?") ? "&" : "?"}passfile=/secrets/_registry/pgpass"

  tenant_mounts = {
    for t in var.tenants : "tenant-${replace(t, "_", "-")}" => {
      mount_path = "/secrets/${t}"
      path       = "dsn"
      secret     = "${var.name_prefix}-tenant-${t}-dsn"
    }
  }
  read_mounts = merge(local.registry_mount, local.tenant_mounts)

  target_secrets = { for k, t in var.targets : k => "${var.name_prefix}-target-${k}-pgpass" if t.kind == "postgres" }

  # ---- targets ----
  bigquery_targets = {
    for k, t in var.targets : k => merge(t.bigquery, { project = t.bigquery.project != "" ? t.bigquery.project : var.project }) if t.kind == "bigquery"
  }
  bigquery_projects = toset([for _, b in local.bigquery_targets : b.project])

  # TENANTLAKE_TARGETS entries: the URL of each target with its name= (the
  # map key) and, for PostgreSQL, the pgpass file mounted into its Load
  # function. Neither holds a password.
  target_urls = {
    for k, t in var.targets : k => t.kind == "postgres" ? join("", [
      t.url, strcontains(t.url, "?") ? "&" : "?",
      join("&", compact(["name=${k}", "passfile=/secrets/_target/pgpass", t.options])),
      ]) : join("", [
      "bigquery://", local.bigquery_targets[k].project, "?",
      join("&", compact([
        "name=${k}",
        "location=${local.bigquery_targets[k].location}",
        "dataset_template=${urlencode(local.bigquery_targets[k].dataset_template)}",
        "staging_dataset=${local.bigquery_targets[k].staging_dataset}",
        "ledger_dataset=${local.bigquery_targets[k].ledger_dataset}",
        "all_tenants_dataset=${local.bigquery_targets[k].all_tenants_dataset}",
        t.options,
      ])),
    ])
  }

  # ---- environments (config.Env names only) ----
  big_read_enabled = var.big_read.image != ""
  big_read_job     = "projects/${var.project}/locations/${var.region}/jobs/${local.names.big_read_job}"

  common_env = {
    TENANTLAKE_LAKE                            = local.lake_url
    TENANTLAKE_PROJECT                         = var.project
    TENANTLAKE_TOPIC_READ_REQUESTS             = local.topics.read_requests
    TENANTLAKE_TOPIC_SNAPSHOTS                 = local.topics.snapshots
    TENANTLAKE_TOPIC_LOADS                     = local.topics.loads
    TENANTLAKE_TOPIC_READ_REQUESTS_DEAD_LETTER = local.topics.read_requests_dead_letter
    TENANTLAKE_TOPIC_SNAPSHOTS_DEAD_LETTER     = local.topics.snapshots_dead_letter
    TENANTLAKE_TOPIC_LOADS_DEAD_LETTER         = local.topics.loads_dead_letter
  }

  env = {
    schedule = merge(local.common_env, {
      TENANTLAKE_REGISTRY = local.registry_ref
    })
    read = merge(local.common_env, {
      TENANTLAKE_REGISTRY         = local.registry_ref
      TENANTLAKE_READS_PER_HOST   = tostring(var.reads_per_host)
      TENANTLAKE_CONNECTIONS      = tostring(var.connections)
      TENANTLAKE_TENANT_TIMEOUT   = "${local.fn.read.timeout_seconds - 30}s"
      TENANTLAKE_BIG_TENANT_BYTES = tostring(var.big_read.tenant_bytes)
      }, local.big_read_enabled ? {
      TENANTLAKE_BIG_READ_JOB = local.big_read_job
    } : {})
    load = {
      for k, _ in var.targets : k => merge(local.common_env, {
        TENANTLAKE_TARGETS        = local.target_urls[k]
        TENANTLAKE_TENANT_TIMEOUT = "${local.fn.load.timeout_seconds - 30}s"
      })
    }
    replay = merge(local.common_env, {
      TENANTLAKE_TARGETS = join(" ", [for k in sort(keys(var.targets)) : local.target_urls[k]])
    })
    snapshots = merge(local.common_env, {
      TENANTLAKE_TARGETS = join(" ", [for k in sort(keys(var.targets)) : local.target_urls[k]])
    })
    # The big-read job: the read settings, a timeout under its task
    # timeout; each execution adds TENANTLAKE_JOB_TENANT and
    # TENANTLAKE_JOB_REQUEST_ID (config.JobEnv) as overrides.
    job = merge(local.common_env, {
      TENANTLAKE_REGISTRY       = local.registry_ref
      TENANTLAKE_READS_PER_HOST = tostring(var.reads_per_host)
      TENANTLAKE_CONNECTIONS    = tostring(var.connections)
      TENANTLAKE_TENANT_TIMEOUT = "${var.big_read.timeout_seconds - 60}s"
    })
  }

  # The Pub/Sub service agent, which dead-letters messages and mints the
  # push subscriptions' OIDC tokens.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "this" {
  project_id = var.project
}
