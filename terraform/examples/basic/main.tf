# An example root module: copy this folder, set the variables (see
# terraform.tfvars.example), run `make package` in the repository, then
# `terraform init` and `terraform apply`. The README's "Deploy on Google
# Cloud" walks through it.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
  }

  # Keep the state in a bucket of your own, e.g.:
  # backend "gcs" {
  #   bucket = "my-terraform-state"
  #   prefix = "tenantlake"
  # }
}

provider "google" {
  project = var.project
  region  = var.region
}

module "tenantlake" {
  # In a copy outside this repository, point source at the repository:
  #   source = "github.com/tenantlake/tenantlake//terraform?ref=v1.0.0"
  source = "../.."

  project        = var.project
  region         = var.region
  source_archive = var.source_archive
  analysts_group = var.analysts_group
  vpc_connector  = var.vpc_connector # tenant databases and the warehouse on private addresses

  # Each tenant gets a secret <name_prefix>-tenant-<id>-dsn; its registry
  # connection is file:/secrets/<id>/dsn.
  tenants = var.tenants

  registry = {
    kind = "postgres"
    url  = var.registry_url
  }

  targets = {
    bigquery = {
      kind = "bigquery"
      bigquery = {
        location = "EU"
      }
    }
    warehouse = {
      kind = "postgres"
      url  = var.warehouse_url
    }
  }

  schedule  = "0 2 * * *"
  time_zone = "Europe/Berlin"
}
