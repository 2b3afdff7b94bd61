# Topics and the subscriptions we own (DESIGN.md, "Events and functions on
# GCP"): push subscriptions to Read and to one Load function per target,
# each with a dead-letter policy, a retry policy, a 600 s ack deadline,
# ordering (the ordering key is the tenant) and OIDC push authentication; a
# pull subscription on loads for observers; and a subscription on every
# dead-letter topic, so dead letters are kept. No subscription expires.

resource "google_pubsub_topic" "read_requests" {
  project = var.project
  name    = local.topics.read_requests
  labels  = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "snapshots" {
  project = var.project
  name    = local.topics.snapshots
  labels  = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "loads" {
  project = var.project
  name    = local.topics.loads
  labels  = local.labels

  depends_on = [google_project_service.apis]
}

# Dead-letter topics keep their messages for 31 days (the maximum), so a
# subscription can be sought back to replay them; their -keep subscriptions
# hold them for 7 days (the subscription maximum).
resource "google_pubsub_topic" "read_requests_dead_letter" {
  project                    = var.project
  name                       = local.topics.read_requests_dead_letter
  labels                     = local.labels
  message_retention_duration = "2678400s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "snapshots_dead_letter" {
  project                    = var.project
  name                       = local.topics.snapshots_dead_letter
  labels                     = local.labels
  message_retention_duration = "2678400s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "loads_dead_letter" {
  project                    = var.project
  name                       = local.topics.loads_dead_letter
  labels                     = local.labels
  message_retention_duration = "2678400s"

  depends_on = [google_project_service.apis]
}

# read-requests → Read.
resource "google_pubsub_subscription" "read" {
  project                    = var.project
  name                       = local.subscriptions.read
  topic                      = google_pubsub_topic.read_requests.id
  labels                     = local.labels
  ack_deadline_seconds       = 600
  enable_message_ordering    = true
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "${var.push_retry_backoff.min_seconds}s"
    maximum_backoff = "${var.push_retry_backoff.max_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.read_requests_dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    # The functions framework converts a raw push body into a CloudEvent
    # only when the path is /projects/P/topics/T.
    push_endpoint = "${google_cloudfunctions2_function.read.service_config[0].uri}/projects/${var.project}/topics/${local.topics.read_requests}"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.read.service_config[0].uri
    }
  }

  depends_on = [
    google_pubsub_topic_iam_member.agent_publishes_dead_letters,
    google_cloud_run_v2_service_iam_member.push_invokes_read,
  ]
}

# snapshots → Load, one subscription per target, filtered on the target
# attribute (config.LoadFilter).
resource "google_pubsub_subscription" "load" {
  for_each = var.targets

  project                    = var.project
  name                       = local.subscriptions.load[each.key]
  topic                      = google_pubsub_topic.snapshots.id
  labels                     = local.labels
  filter                     = local.load_filters[each.key]
  ack_deadline_seconds       = 600
  enable_message_ordering    = true
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "${var.push_retry_backoff.min_seconds}s"
    maximum_backoff = "${var.push_retry_backoff.max_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.snapshots_dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.load[each.key].service_config[0].uri}/projects/${var.project}/topics/${local.topics.snapshots}"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloudfunctions2_function.load[each.key].service_config[0].uri
    }
  }

  depends_on = [
    google_pubsub_topic_iam_member.agent_publishes_dead_letters,
    google_cloud_run_v2_service_iam_member.push_invokes_load,
  ]
}

# loads: a pull subscription for observers (dashboards, alerts, `gcloud
# pubsub subscriptions pull`). A message an observer keeps failing on goes
# to loads-dead-letter.
resource "google_pubsub_subscription" "loads_watch" {
  project                    = var.project
  name                       = local.subscriptions.loads_watch
  topic                      = google_pubsub_topic.loads.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  enable_message_ordering    = true
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "${var.push_retry_backoff.min_seconds}s"
    maximum_backoff = "${var.push_retry_backoff.max_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.loads_dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  depends_on = [google_pubsub_topic_iam_member.agent_publishes_dead_letters]
}

# Every dead-letter topic has a pull subscription, or its messages would be
# dropped. These are the end of the line: no dead-letter policy of their own.
resource "google_pubsub_subscription" "keep" {
  for_each = {
    read_requests_dead_letter = google_pubsub_topic.read_requests_dead_letter.id
    snapshots_dead_letter     = google_pubsub_topic.snapshots_dead_letter.id
    loads_dead_letter         = google_pubsub_topic.loads_dead_letter.id
  }

  project                    = var.project
  name                       = local.subscriptions.keep[each.key]
  topic                      = each.value
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent forwards undeliverable messages: it needs
# publisher on each dead-letter topic and subscriber on each subscription
# that dead-letters.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  for_each = {
    read_requests_dead_letter = google_pubsub_topic.read_requests_dead_letter.name
    snapshots_dead_letter     = google_pubsub_topic.snapshots_dead_letter.name
    loads_dead_letter         = google_pubsub_topic.loads_dead_letter.name
  }

  project = var.project
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "agent_subscribes_read" {
  project      = var.project
  subscription = google_pubsub_subscription.read.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "agent_subscribes_load" {
  for_each = google_pubsub_subscription.load

  project      = var.project
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "agent_subscribes_loads_watch" {
  project      = var.project
  subscription = google_pubsub_subscription.loads_watch.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
