# The Terraform and provider versions this module is written for. The google
# provider's 7.x line is the one whose resource schemas were followed
# (google_cloudfunctions2_function, google_cloud_run_v2_job,
# google_pubsub_subscription, ...); see the README's "Deploy on Google Cloud"
# for what was checked here and how.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
  }
}
