variable "project" {
  description = "Google Cloud project id to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a Google Cloud project id."
  }
}

variable "region" {
  description = "Region of the functions, the job and the lake bucket."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "source_archive" {
  description = "Path of the archive `make package` builds."
  type        = string
  default     = "../../../dist/tenantlake-functions.zip"

  validation {
    condition     = can(regex("\\.zip$", var.source_archive))
    error_message = "source_archive must be the path of a .zip file."
  }
}

variable "analysts_group" {
  description = "Google group whose members may call Replay and Snapshots."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[A-Za-z]{2,}$", var.analysts_group))
    error_message = "analysts_group must be a group's email address."
  }
}

variable "tenants" {
  description = "Tenant ids whose connection strings are kept in Secret Manager."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for t in var.tenants : can(regex("^[a-z][a-z0-9_]{0,62}$", t))])
    error_message = "tenants: ids are a lower-case letter, then lower-case letters, digits or _."
  }
}

variable "registry_url" {
  description = "postgres:// URL (without a password) of the database holding the tenant_registry table."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://", var.registry_url)) && !can(regex("^[a-z]+://[^/@]*:[^/@]*@", var.registry_url))
    error_message = "registry_url must be a postgres:// URL without a password."
  }
}

variable "warehouse_url" {
  description = "postgres:// URL (without a password) of the PostgreSQL warehouse target."
  type        = string

  validation {
    condition     = can(regex("^postgres(ql)?://", var.warehouse_url)) && !can(regex("^[a-z]+://[^/@]*:[^/@]*@", var.warehouse_url))
    error_message = "warehouse_url must be a postgres:// URL without a password."
  }
}

variable "vpc_connector" {
  description = "Serverless VPC Access connector (projects/P/locations/L/connectors/C) through which the functions reach private addresses; \"\" for none."
  type        = string
  default     = ""

  validation {
    condition     = var.vpc_connector == "" || can(regex("^projects/[^/]+/locations/[^/]+/connectors/[^/]+$", var.vpc_connector))
    error_message = "vpc_connector must be empty or projects/PROJECT/locations/REGION/connectors/NAME."
  }
}
