// Package config is the one set of settings that every front end of
// tenantlake reads: the Cloud Functions, `tenantlake run` / `serve` on one
// machine, Terraform (which sets the same environment variables on each
// function) and the tests. Every setting is an environment variable named
// here; the CLI's flags default to the same variables.
//
// FromEnv reads and checks them all at start: a missing or malformed setting
// fails with an error naming the variable, never at the first message.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The environment variables. Env lists them all, for documentation and for
// the test that keeps Terraform's function environments in step with them.
const (
	// EnvLake is the lake URL: file:///path, gs://bucket/prefix or mem://.
	EnvLake = "TENANTLAKE_LAKE"
	// EnvRegistry is the tenant registry: a YAML file path or a postgres://
	// URL of a database with a tenant_registry table.
	EnvRegistry = "TENANTLAKE_REGISTRY"
	// EnvTargets lists the write strategies' target URLs, separated by
	// spaces or newlines (postgres://… and bigquery://…, as `tenantlake load
	// --target` takes them). Each target's name is its URL's name= option,
	// or the scheme's default (postgres, bigquery); names must be unique.
	// On GCP each Load function is given exactly one.
	EnvTargets = "TENANTLAKE_TARGETS"
	// EnvProject is the Google Cloud project of the Pub/Sub topics.
	EnvProject = "TENANTLAKE_PROJECT"
	// Topic names (defaults: read-requests, snapshots, loads) and their
	// dead-letter topics (defaults: the topic name + "-dead-letter").
	EnvTopicReadRequests           = "TENANTLAKE_TOPIC_READ_REQUESTS"
	EnvTopicSnapshots              = "TENANTLAKE_TOPIC_SNAPSHOTS"
	EnvTopicLoads                  = "TENANTLAKE_TOPIC_LOADS"
	EnvTopicReadRequestsDeadLetter = "TENANTLAKE_TOPIC_READ_REQUESTS_DEAD_LETTER"
	EnvTopicSnapshotsDeadLetter    = "TENANTLAKE_TOPIC_SNAPSHOTS_DEAD_LETTER"
	EnvTopicLoadsDeadLetter        = "TENANTLAKE_TOPIC_LOADS_DEAD_LETTER"
	// EnvReadsPerHost bounds the reads one process runs at once against one
	// source host (default 2).
	EnvReadsPerHost = "TENANTLAKE_READS_PER_HOST"
	// EnvConnections is the number of connections one tenant's read uses,
	// all in the same snapshot (default 2).
	EnvConnections = "TENANTLAKE_CONNECTIONS"
	// EnvTenantTimeout bounds one tenant's read or load in a function
	// (default 9m: under an event function's 540 s limit and the 600 s
	// maximum ack deadline, see DESIGN.md).
	EnvTenantTimeout = "TENANTLAKE_TENANT_TIMEOUT"
	// EnvBigTenantBytes: a tenant whose relations are larger than this
	// (bytes, from the catalog) is read by the big-read Cloud Run job
	// instead of in the Read function (default 0: never).
	EnvBigTenantBytes = "TENANTLAKE_BIG_TENANT_BYTES"
	// EnvBigReadJob is the big-read Cloud Run job's full name,
	// projects/P/locations/L/jobs/J (required when EnvBigTenantBytes is set).
	EnvBigReadJob = "TENANTLAKE_BIG_READ_JOB"
	// EnvJobTenant and EnvJobRequestID are the per-execution overrides the
	// Read function gives the big-read job.
	EnvJobTenant    = "TENANTLAKE_JOB_TENANT"
	EnvJobRequestID = "TENANTLAKE_JOB_REQUEST_ID"
)

// Env lists every environment variable the functions read.
var Env = []string{
	EnvLake, EnvRegistry, EnvTargets, EnvProject,
	EnvTopicReadRequests, EnvTopicSnapshots, EnvTopicLoads,
	EnvTopicReadRequestsDeadLetter, EnvTopicSnapshotsDeadLetter, EnvTopicLoadsDeadLetter,
	EnvReadsPerHost, EnvConnections, EnvTenantTimeout, EnvBigTenantBytes, EnvBigReadJob,
}

// JobEnv lists the variables only the big-read job reads (set per execution).
var JobEnv = []string{EnvJobTenant, EnvJobRequestID}

// The functions, by the entry-point name they are registered under
// (functions-framework-go; FUNCTION_TARGET on GCP).
const (
	FunctionSchedule  = "Schedule"  // HTTP, called by Cloud Scheduler
	FunctionRead      = "Read"      // CloudEvent, pushed from the read-requests topic
	FunctionLoad      = "Load"      // CloudEvent, pushed from the snapshots topic (one deployment per target)
	FunctionReplay    = "Replay"    // HTTP, for analysts
	FunctionSnapshots = "Snapshots" // HTTP GET, for analysts
)

// Functions lists every entry point.
var Functions = []string{FunctionSchedule, FunctionRead, FunctionLoad, FunctionReplay, FunctionSnapshots}

// Default topic names.
const (
	DefaultTopicReadRequests = "read-requests"
	DefaultTopicSnapshots    = "snapshots"
	DefaultTopicLoads        = "loads"
	DeadLetterSuffix         = "-dead-letter"
)

// Topics names the topics of DESIGN.md's event contract.
type Topics struct {
	ReadRequests, Snapshots, Loads                               string
	ReadRequestsDeadLetter, SnapshotsDeadLetter, LoadsDeadLetter string
}

// All returns every topic, main topics first.
func (t Topics) All() []string {
	return []string{t.ReadRequests, t.Snapshots, t.Loads, t.ReadRequestsDeadLetter, t.SnapshotsDeadLetter, t.LoadsDeadLetter}
}

// DeadLetter returns the dead-letter topic of topic ("" if topic is not one
// of t's main topics).
func (t Topics) DeadLetter(topic string) string {
	switch topic {
	case t.ReadRequests:
		return t.ReadRequestsDeadLetter
	case t.Snapshots:
		return t.SnapshotsDeadLetter
	case t.Loads:
		return t.LoadsDeadLetter
	}
	return ""
}

// Config is every setting, read by FromEnv.
type Config struct {
	Lake          string
	Registry      string
	Targets       []Target
	Project       string
	Topics        Topics
	ReadsPerHost  int
	Connections   int
	TenantTimeout time.Duration
	// BigTenantBytes: tenants larger than this are read by the big-read job
	// (0: never).
	BigTenantBytes int64
	// BigReadJob is the big-read Cloud Run job, projects/P/locations/L/jobs/J.
	BigReadJob string
}

// Target is one write strategy's target.
type Target struct {
	Name string // unique; the lake's ledger key, the subscription's suffix, the events' target attribute
	URL  string // as `tenantlake load --target` takes it (may hold a password: print with tenant.Redact)
}

// Lookup reads one variable; tests pass a map's lookup instead of os.LookupEnv.
type Lookup func(name string) (string, bool)

// Need says which settings a front end cannot do without.
type Need struct {
	Registry bool // Schedule, Read
	Targets  bool // Load, Replay
	Project  bool // anything that publishes to GCP Pub/Sub (not pstest)
}

// FromEnv reads every setting with lookup (os.LookupEnv when nil) and checks
// it. Each problem names its variable; all problems are reported at once.
func FromEnv(lookup Lookup, need Need) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var errs []error
	get := func(name, def string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	c := Config{
		Lake:     get(EnvLake, ""),
		Registry: get(EnvRegistry, ""),
		Project:  get(EnvProject, ""),
	}
	if c.Lake == "" {
		bad(EnvLake, "not set: give the lake URL (file:///path, gs://bucket/prefix or mem://)")
	}
	if need.Registry && c.Registry == "" {
		bad(EnvRegistry, "not set: give the tenant registry (a YAML file or a postgres:// URL)")
	}
	if need.Project && c.Project == "" {
		bad(EnvProject, "not set: give the Google Cloud project of the Pub/Sub topics")
	} else if c.Project != "" && !projectRE.MatchString(c.Project) {
		bad(EnvProject, "%q is not a Google Cloud project id", c.Project)
	}
	topic := func(name, def string) string {
		v := get(name, def)
		if !topicRE.MatchString(v) {
			bad(name, "%q is not a Pub/Sub topic name (a letter, then 2-254 letters, digits or -_.~+%%)", v)
		}
		return v
	}
	c.Topics.ReadRequests = topic(EnvTopicReadRequests, DefaultTopicReadRequests)
	c.Topics.Snapshots = topic(EnvTopicSnapshots, DefaultTopicSnapshots)
	c.Topics.Loads = topic(EnvTopicLoads, DefaultTopicLoads)
	c.Topics.ReadRequestsDeadLetter = topic(EnvTopicReadRequestsDeadLetter, c.Topics.ReadRequests+DeadLetterSuffix)
	c.Topics.SnapshotsDeadLetter = topic(EnvTopicSnapshotsDeadLetter, c.Topics.Snapshots+DeadLetterSuffix)
	c.Topics.LoadsDeadLetter = topic(EnvTopicLoadsDeadLetter, c.Topics.Loads+DeadLetterSuffix)
	seen := map[string]string{}
	for i, name := range []string{EnvTopicReadRequests, EnvTopicSnapshots, EnvTopicLoads, EnvTopicReadRequestsDeadLetter, EnvTopicSnapshotsDeadLetter, EnvTopicLoadsDeadLetter} {
		t := c.Topics.All()[i]
		if other, dup := seen[t]; dup {
			bad(name, "topic %q is also %s: every topic must be distinct", t, other)
		}
		seen[t] = name
	}
	positive := func(name string, def int) int {
		v := get(name, "")
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			bad(name, "%q: want a whole number from 1 to 1000", v)
			return def
		}
		return n
	}
	c.ReadsPerHost = positive(EnvReadsPerHost, 2)
	c.Connections = positive(EnvConnections, 2)
	c.TenantTimeout = 9 * time.Minute
	if v := get(EnvTenantTimeout, ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad(EnvTenantTimeout, "%q: want a positive duration such as 9m or 1h", v)
		} else {
			c.TenantTimeout = d
		}
	}
	if v := get(EnvBigTenantBytes, ""); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			bad(EnvBigTenantBytes, "%q: want a whole number of bytes, 0 or more (0: never use the big-read job)", v)
		} else {
			c.BigTenantBytes = n
		}
	}
	c.BigReadJob = get(EnvBigReadJob, "")
	if c.BigReadJob != "" && !jobRE.MatchString(c.BigReadJob) {
		bad(EnvBigReadJob, "%q is not a Cloud Run job name (projects/P/locations/L/jobs/J)", c.BigReadJob)
	} else if c.BigTenantBytes > 0 && c.BigReadJob == "" {
		bad(EnvBigReadJob, "not set, but %s is: give the big-read Cloud Run job, projects/P/locations/L/jobs/J", EnvBigTenantBytes)
	}
	targets, err := ParseTargets(get(EnvTargets, ""))
	if err != nil {
		bad(EnvTargets, "%v", err)
	}
	c.Targets = targets
	if need.Targets && err == nil && len(targets) == 0 {
		bad(EnvTargets, "not set: give one or more target URLs (postgres://… or bigquery://…), separated by spaces")
	}
	return c, errors.Join(errs...)
}

var (
	projectRE = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z][a-z0-9.:-]{1,100}$`)
	topicRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$`)
	jobRE     = regexp.MustCompile(`^projects/[a-z][a-z0-9.:-]{1,100}/locations/[a-z][a-z0-9-]{1,62}/jobs/[a-z][a-z0-9-]{0,62}$`)
	// targetNameRE is the rule for a target's name: it becomes a lake key,
	// a subscription name's suffix and a Pub/Sub attribute value.
	targetNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
)

// ParseTargets splits a whitespace-separated list of target URLs and names
// each one. It never echoes a URL (they may hold passwords): errors give the
// target's position and scheme.
func ParseTargets(s string) ([]Target, error) {
	var out []Target
	names := map[string]int{}
	for i, raw := range strings.Fields(s) {
		scheme, rest, ok := strings.Cut(raw, "://")
		if !ok || rest == "" {
			return nil, fmt.Errorf("target %d is not a URL (want postgres://… or bigquery://…)", i+1)
		}
		var def string
		switch scheme {
		case "postgres", "postgresql":
			def = "postgres"
		case "bigquery":
			def = "bigquery"
		default:
			return nil, fmt.Errorf("target %d: unknown scheme %q (want postgres:// or bigquery://)", i+1, scheme)
		}
		name := def
		if _, query, ok := strings.Cut(rest, "?"); ok {
			q, err := url.ParseQuery(query)
			if err != nil {
				return nil, fmt.Errorf("target %d (%s): its options do not parse", i+1, scheme)
			}
			if n := q.Get("name"); n != "" {
				name = n
			}
		}
		if err := ValidTargetName(name); err != nil {
			return nil, fmt.Errorf("target %d (%s): %w", i+1, scheme, err)
		}
		if j, dup := names[name]; dup {
			return nil, fmt.Errorf("targets %d and %d are both named %q: give each a distinct name= option", j, i+1, name)
		}
		names[name] = i + 1
		out = append(out, Target{Name: name, URL: raw})
	}
	return out, nil
}

// ValidTargetName checks a target's name: a lower-case letter, then up to 39
// lower-case letters, digits or '_'.
func ValidTargetName(name string) error {
	if !targetNameRE.MatchString(name) {
		return fmt.Errorf("target name %q: want a lower-case letter, then up to 39 lower-case letters, digits or '_'", name)
	}
	return nil
}

// Target returns the target named name.
func (c Config) Target(name string) (Target, bool) {
	for _, t := range c.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// TargetNames lists the targets' names in configuration order.
func (c Config) TargetNames() []string {
	var out []string
	for _, t := range c.Targets {
		out = append(out, t.Name)
	}
	return out
}

// Subscription names, as Terraform creates them and `tenantlake run` does
// locally: the read-requests topic's push subscription to Read, one push
// subscription per target on the snapshots topic (filtered on the target
// attribute), a pull subscription on the loads topic for observers, and one
// on every dead-letter topic so dead letters are kept.
func ReadSubscription(t Topics) string                { return t.ReadRequests + "-read" }
func LoadSubscription(t Topics, target string) string { return t.Snapshots + "-load-" + target }
func LoadsSubscription(t Topics) string               { return t.Loads + "-watch" }
func DeadLetterSubscription(deadLetterTopic string) string {
	return deadLetterTopic + "-keep"
}

// LoadFilter is the snapshots subscription filter of a target: events aimed
// at no target, or at this one.
func LoadFilter(target string) string {
	return fmt.Sprintf(`NOT attributes:target OR attributes.target = "%s"`, target)
}
