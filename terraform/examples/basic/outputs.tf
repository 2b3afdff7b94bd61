output "function_urls" {
  description = "URLs of the functions."
  value       = module.tenantlake.function_urls
}

output "secrets" {
  description = "Secret ids to add the connection strings and passwords to."
  value       = module.tenantlake.secrets
}

output "lake_url" {
  description = "The lake, for `tenantlake --lake`."
  value       = module.tenantlake.lake_url
}

output "registry" {
  description = "The registry reference and each tenant's connection reference."
  value       = module.tenantlake.registry
}
