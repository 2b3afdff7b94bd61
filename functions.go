// Package tenantlake is the module's root package. It exists for the Cloud
// Functions Go buildpack, which builds the package at the root of the
// source archive (`make package`): the buildpack sees that this package
// imports functions-framework-go's functions package, so it generates a
// main that imports this package and starts the framework, and the
// deployment's entry point (FUNCTION_TARGET: Schedule, Read, Load, Replay
// or Snapshots) picks the function to serve. Nothing else imports it.
package tenantlake

import (
	// The buildpack looks for this import in the root package to choose
	// declarative registration; package functions registers through it.
	_ "github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/tenantlake/tenantlake/functions"
)

func init() {
	functions.Register()
}
