// Package terraform_test checks the Terraform module in this folder without
// a cloud: the google provider cannot be downloaded here, so `terraform
// validate` and `plan` never run. These tests parse the configuration with
// hashicorp/hcl/v2 (module_test.go) and assert the deployment's policies:
// no public bucket, no primitive or admin role, nothing for allUsers or
// allAuthenticatedUsers, every subscription dead-letters and every
// dead-letter topic is kept, every function and job runs as a service
// account of its own, the service accounts' roles are exactly the expected
// set, every variable is described, typed and validated; and that the
// names and environment Terraform gives the functions are those the Go code
// reads (package config).
package terraform_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/tenantlake/tenantlake/config"
)

const examplePath = "examples/basic"

// exampleInputs are the module's inputs in the example root, with the
// example's terraform.tfvars.example: the deployment the tests check first.
func exampleInputs(t *testing.T) inputs {
	t.Helper()
	ex := loadModule(t, examplePath)
	vars := readTFVars(t, examplePath+"/terraform.tfvars.example")
	exVals := map[string]cty.Value{}
	for name := range ex.variables {
		given, ok := vars[name]
		v, err := ex.varValue(name, given, ok)
		if err != nil {
			t.Fatalf("example var.%s: %v", name, err)
		}
		if failed := ex.validate(name, v); failed != nil {
			t.Fatalf("example var.%s fails its validation: %v", name, failed)
		}
		exVals[name] = v
	}
	mod, ok := ex.modules["tenantlake"]
	if !ok {
		t.Fatal(`the example has no module "tenantlake"`)
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(exVals)}, Functions: functions}
	in := inputs{}
	for name, a := range mod.Body.Attributes {
		if name == "source" {
			continue
		}
		v, diags := a.Expr.Value(ctx)
		if diags.HasErrors() {
			t.Fatalf("example module argument %s: %s", name, diags.Error())
		}
		in[name] = v
	}
	return in
}

// otherInputs exercise what the example leaves at its defaults: a YAML
// registry, the big-read job, a topic prefix, overridden function settings.
func otherInputs(t *testing.T) inputs {
	return inputs{
		"project":        cty.StringVal("globex-lake-01"),
		"region":         cty.StringVal("us-central1"),
		"source_archive": cty.StringVal("dist/tenantlake-functions.zip"),
		"analysts_group": cty.StringVal("analysts@globex.example"),
		"name_prefix":    cty.StringVal("tlk"),
		"topic_prefix":   cty.StringVal("tl-"),
		"tenants":        hclValue(t, `["acme", "big_one"]`),
		"registry":       hclValue(t, `{kind = "yaml"}`),
		"targets": hclValue(t, `{
			dw = {kind = "postgres", url = "postgresql://loader@dw.internal:5432/dw", options = "profile_check=false"}
			bq_eu = {kind = "bigquery", bigquery = {project = "globex-bq-01", location = "europe-west1", staging_dataset = "stage"}}
			bq_us = {kind = "bigquery", bigquery = {location = "US"}}
		}`),
		"big_read":          hclValue(t, `{image = "us-docker.pkg.dev/globex-lake-01/tl/tenantlake:1.2.3", tenant_bytes = 50000000000, task_count = 4, parallelism = 2}`),
		"function_settings": hclValue(t, `{read = {timeout_seconds = 600, memory = "2Gi"}, snapshots = {concurrency = 20}}`),
	}
}

func TestEveryVariableIsDescribedTypedAndValidated(t *testing.T) {
	for _, dir := range []string{".", examplePath} {
		m := loadModule(t, dir)
		for name, b := range m.variables {
			d := b.Body.Attributes["description"]
			if d == nil {
				t.Errorf("%s: variable %s has no description", dir, name)
			} else if v, diags := d.Expr.Value(nil); diags.HasErrors() || v.Type() != cty.String || len(strings.TrimSpace(v.AsString())) < 10 {
				t.Errorf("%s: variable %s: the description must be a sentence", dir, name)
			}
			if b.Body.Attributes["type"] == nil {
				t.Errorf("%s: variable %s has no type", dir, name)
			}
			n := 0
			for _, vb := range b.Body.Blocks {
				if vb.Type == "validation" {
					n++
					if vb.Body.Attributes["condition"] == nil || vb.Body.Attributes["error_message"] == nil {
						t.Errorf("%s: variable %s: a validation needs a condition and an error_message", dir, name)
					}
					if !strings.Contains(m.text(vb.Body.Attributes["condition"].Expr), "var."+name) {
						t.Errorf("%s: variable %s: a validation condition does not look at the variable", dir, name)
					}
				}
			}
			if n == 0 {
				t.Errorf("%s: variable %s has no validation", dir, name)
			}
			// A default must pass its own validations.
			if b.Body.Attributes["default"] != nil {
				v, err := m.varValue(name, cty.NilVal, false)
				if err != nil {
					t.Errorf("%s: variable %s: %v", dir, name, err)
				} else if failed := m.validate(name, v); failed != nil {
					t.Errorf("%s: variable %s: its default fails validation: %v", dir, name, failed)
				}
			}
		}
	}
}

// Bad input is refused at plan time with the variable's message.
func TestValidationsRefuseBadInput(t *testing.T) {
	m := loadModule(t, ".")
	okTarget := `{kind = "postgres", url = "postgres://loader@10.0.0.5:5432/warehouse"}`
	bad := []struct{ name, value, why string }{
		{"project", `"Acme_Prod"`, "not a project id"},
		{"region", `"Europe West"`, "not a region"},
		{"name_prefix", `"a-very-long-prefix"`, "too long for service account ids"},
		{"topic_prefix", `"9topics"`, "a topic starts with a letter"},
		{"lake_soft_delete_days", `3`, "soft delete is 0 or 7..90 days"},
		{"lake_nearline_after_days", `10`, "Nearline's minimum storage is 30 days"},
		{"source_archive", `"dist/tenantlake"`, "not a zip"},
		{"go_runtime", `"1.26"`, "not a runtime id"},
		{"function_settings", `{read = {timeout_seconds = 601}}`, "a push is bounded by the 600 s ack deadline"},
		{"function_settings", `{reader = {memory = "1Gi"}}`, "no such function"},
		{"function_settings", `{load = {memory = "1GB"}}`, "memory unit"},
		{"pipeline_ingress", `"ALLOW_EVERYONE"`, "no such ingress"},
		{"tenants", `["Acme"]`, "tenant ids are lower case"},
		{"registry", `{kind = "postgres", url = "postgres://tl:secret@db/control"}`, "a password in the registry URL"},
		{"registry", `{kind = "postgres", url = "postgres://tl@db/control?password=secret"}`, "a password parameter"},
		{"registry", `{kind = "yaml", url = "postgres://tl@db/control"}`, "a URL with the yaml registry"},
		{"registry", `{kind = "mysql"}`, "no such registry"},
		{"targets", `{}`, "no target"},
		{"targets", `{"Ware-House" = ` + okTarget + `}`, "a target name with capitals"},
		{"targets", `{warehouse_ = ` + okTarget + `}`, "a target name ending in _"},
		{"targets", `{warehouse = {kind = "postgres", url = "postgres://loader:pw@10.0.0.5/warehouse"}}`, "a password in a target URL"},
		{"targets", `{warehouse = {kind = "postgres", url = "postgres://loader@10.0.0.5/warehouse?name=other"}}`, "name= set by hand"},
		{"targets", `{warehouse = {kind = "postgres", url = "postgres://loader@10.0.0.5/warehouse", options = "passfile=/x"}}`, "a passfile option"},
		{"targets", `{warehouse = {kind = "postgres", url = "postgres://loader@10.0.0.5/ware house"}}`, "a space splits TENANTLAKE_TARGETS"},
		{"targets", `{bq = {kind = "bigquery", url = "bigquery://p"}}`, "a bigquery target takes no url"},
		{"targets", `{bq = {kind = "bigquery", bigquery = {staging_dataset = "same", ledger_dataset = "same"}}}`, "datasets must be distinct"},
		{"targets", `{bq = {kind = "bigquery", bigquery = {dataset_template = "tenants"}}}`, "a dataset template without {tenant}"},
		{"targets", `{bq = {kind = "bigquery", bigquery = {staging_expiration_days = 0}}}`, "staging tables must live a day"},
		{"analysts_group", `"analysts"`, "not an email address"},
		{"max_delivery_attempts", `4`, "Pub/Sub's minimum is 5"},
		{"push_retry_backoff", `{min_seconds = 60, max_seconds = 10}`, "min above max"},
		{"push_retry_backoff", `{min_seconds = 10, max_seconds = 601}`, "Pub/Sub's maximum is 600 s"},
		{"schedule", `"daily"`, "not a cron expression"},
		{"time_zone", `"Berlin time"`, "not a tz name"},
		{"schedule_attempt_deadline_seconds", `1801`, "Cloud Scheduler's limit is 30 minutes"},
		{"schedule_retry_count", `6`, "at most 5 retries"},
		{"big_read", `{tenant_bytes = 1000}`, "big tenants without a job image"},
		{"big_read", `{image = "tenantlake"}`, "an image without a tag"},
		{"big_read", `{image = "r/tl:1", task_count = 2, parallelism = 3}`, "parallelism above the task count"},
		{"big_read", `{image = "r/tl:1", timeout_seconds = 700000}`, "beyond Cloud Run's 7 days"},
		{"vpc_connector", `"my-connector"`, "not a connector name"},
		{"labels", `{"Team" = "data"}`, "a label key with capitals"},
	}
	for _, c := range bad {
		v, err := m.varValue(c.name, hclValue(t, c.value), true)
		if err != nil {
			continue // refused by the type itself
		}
		if m.validate(c.name, v) == nil {
			t.Errorf("var.%s = %s is accepted; it must be refused (%s)", c.name, c.value, c.why)
		}
	}
}

// The example root is a working call of the module: it gives every
// required input, only inputs that exist, and values that validate.
func TestExampleRootCallsTheModule(t *testing.T) {
	ex := loadModule(t, examplePath)
	mod := ex.modules["tenantlake"]
	if mod == nil {
		t.Fatal(`the example has no module "tenantlake"`)
	}
	if src := ex.text(mod.Body.Attributes["source"].Expr); src != `"../.."` {
		t.Errorf("the example's module source is %s, want \"../..\"", src)
	}
	m := loadModule(t, ".")
	for name, b := range m.variables {
		if b.Body.Attributes["default"] == nil && mod.Body.Attributes[name] == nil {
			t.Errorf("the example does not set the module's required variable %s", name)
		}
	}
	m.evaluate(t, exampleInputs(t)) // fails on an unknown input or a failed validation
	if _, err := os.Stat(examplePath + "/terraform.tfvars.example"); err != nil {
		t.Error(err)
	}
}

func TestBucketsAreNeverPublic(t *testing.T) {
	m := loadModule(t, ".")
	buckets := m.resourcesOf("google_storage_bucket")
	if len(buckets) == 0 {
		t.Fatal("no google_storage_bucket")
	}
	for name, b := range buckets {
		if a := b.Body.Attributes["uniform_bucket_level_access"]; a == nil || m.text(a.Expr) != "true" {
			t.Errorf("bucket %s: uniform_bucket_level_access must be true", name)
		}
		if a := b.Body.Attributes["public_access_prevention"]; a == nil || m.text(a.Expr) != `"enforced"` {
			t.Errorf("bucket %s: public_access_prevention must be \"enforced\"", name)
		}
		if a := attr(b, "versioning", "enabled"); a == nil || m.text(a.Expr) != "false" {
			t.Errorf("bucket %s: versioning must be off (objects are written once)", name)
		}
	}
	for _, typ := range []string{"google_storage_bucket_acl", "google_storage_default_object_acl", "google_storage_object_acl", "google_storage_bucket_access_control"} {
		if len(m.resourcesOf(typ)) > 0 {
			t.Errorf("%s: ACLs are off (uniform bucket-level access); grant with IAM members", typ)
		}
	}
}

// The lake keeps what gc has not deleted: no age-based Delete, a soft-delete
// policy, and the rules the README states.
func TestLakeRetentionRules(t *testing.T) {
	m := loadModule(t, ".")
	lake := m.resource(t, "google_storage_bucket.lake")
	if a := lake.Body.Attributes["force_destroy"]; a == nil || m.text(a.Expr) != "false" {
		t.Error("the lake bucket must not be force_destroy: destroying the deployment must not delete the lake")
	}
	sd := attr(lake, "soft_delete_policy", "retention_duration_seconds")
	if sd == nil || !strings.Contains(m.text(sd.Expr), "var.lake_soft_delete_days") {
		t.Error("the lake bucket's soft_delete_policy must come from var.lake_soft_delete_days")
	}
	e := m.evaluate(t, exampleInputs(t))
	if got := e.value(sd.Expr, nil); goValue(got) != float64(7*86400) {
		t.Errorf("soft delete by default: %v s, want 7 days", goValue(got))
	}
	var actions []string
	for _, r := range lake.Body.Blocks {
		rule := r
		if r.Type == "dynamic" && r.Labels[0] == "lifecycle_rule" {
			rule = block(r, "content")
		} else if r.Type != "lifecycle_rule" {
			continue
		}
		typ := attr(rule, "action", "type")
		if typ == nil {
			t.Fatal("a lifecycle rule of the lake has no action type")
		}
		actions = append(actions, m.text(typ.Expr))
	}
	sort.Strings(actions)
	if want := []string{`"AbortIncompleteMultipartUpload"`, `"SetStorageClass"`}; !slices.Equal(actions, want) {
		t.Errorf("lake lifecycle actions %v, want %v (never Delete: retention is tenantlake gc, whole snapshots, the newest kept)", actions, want)
	}
}

// Nothing is granted to allUsers or allAuthenticatedUsers, no IAM policy is
// set authoritatively, and no primitive or admin role is granted.
func TestNoPublicPrincipalsNoPrimitiveRoles(t *testing.T) {
	m := loadModule(t, ".")
	for name, src := range m.src {
		toks, diags := hclsyntax.LexConfig(src, name, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		for _, tok := range toks {
			if tok.Type != hclsyntax.TokenQuotedLit && tok.Type != hclsyntax.TokenStringLit {
				continue
			}
			s := strings.ToLower(string(tok.Bytes))
			if strings.Contains(s, "allusers") || strings.Contains(s, "allauthenticatedusers") {
				t.Errorf("%s:%d: %q: nothing may be granted to allUsers or allAuthenticatedUsers", name, tok.Range.Start.Line, tok.Bytes)
			}
		}
	}
	for addr, b := range m.resources {
		typ := b.Labels[0]
		if strings.HasSuffix(typ, "_iam_policy") || strings.HasSuffix(typ, "_iam_binding") || typ == "google_bigquery_dataset_access" {
			t.Errorf("%s: authoritative IAM replaces grants made by others; use *_iam_member", addr)
		}
		if strings.HasSuffix(typ, "_iam_member") {
			role := m.text(b.Body.Attributes["role"].Expr)
			if regexp.MustCompile(`^"roles/(owner|editor|viewer)"$|\.admin"$|^"roles/[a-z]+\.admin`).MatchString(role) {
				t.Errorf("%s: role %s is primitive or admin", addr, role)
			}
		}
		if a := b.Body.Attributes["access"]; a != nil {
			t.Errorf("%s: dataset access lists are authoritative; grant with google_bigquery_dataset_iam_member", addr)
		}
	}
	for name, r := range m.resourcesOf("google_project_iam_custom_role") {
		if got := m.text(r.Body.Attributes["permissions"].Expr); got != `["bigquery.datasets.create"]` {
			t.Errorf("custom role %s: permissions %s, want only bigquery.datasets.create", name, got)
		}
	}
}

// grantsOf reads every *_iam_member of the module as "member: role on
// resource", members being sa:<account>, group:analysts or pubsub-agent, and
// resources type.name (or "project").
func grantsOf(t *testing.T, m *tfModule) map[string][]string {
	t.Helper()
	target := map[string]string{
		"google_storage_bucket_iam_member":               "bucket",
		"google_pubsub_topic_iam_member":                 "topic",
		"google_pubsub_subscription_iam_member":          "subscription",
		"google_secret_manager_secret_iam_member":        "secret_id",
		"google_cloud_run_v2_service_iam_member":         "name",
		"google_cloud_run_v2_job_iam_member":             "name",
		"google_bigquery_dataset_iam_member":             "dataset_id",
		"google_artifact_registry_repository_iam_member": "repository",
		"google_service_account_iam_member":              "service_account_id",
		"google_project_iam_member":                      "project",
	}
	resourceRefs := func(x hclsyntax.Expression, wantSA bool) []string {
		var out []string
		for _, r := range refs(x) {
			root, _, _ := strings.Cut(r, ".")
			if !strings.HasPrefix(root, "google_") || (root == "google_service_account") != wantSA {
				continue
			}
			out = append(out, r)
		}
		return out
	}
	out := map[string][]string{}
	for addr, b := range m.resources {
		typ := b.Labels[0]
		if !strings.HasSuffix(typ, "_iam_member") {
			continue
		}
		tattr, ok := target[typ]
		if !ok {
			t.Fatalf("%s: the test does not know which attribute of %s names the resource", addr, typ)
		}
		var fe hclsyntax.Expression
		if a := b.Body.Attributes["for_each"]; a != nil {
			fe = a.Expr
		}
		if b.Body.Attributes["count"] != nil && fe != nil {
			t.Fatalf("%s: count and for_each", addr)
		}
		usesEach := func(x hclsyntax.Expression) bool {
			return slices.ContainsFunc(refs(x), func(r string) bool { return strings.HasPrefix(r, "each.") })
		}
		// Members.
		mx := b.Body.Attributes["member"].Expr
		var members []string
		switch {
		case strings.Contains(m.text(mx), "var.analysts_group"):
			members = []string{"group:analysts"}
		case strings.Contains(m.text(mx), "local.pubsub_service_agent"):
			members = []string{"pubsub-agent"}
		default:
			src := resourceRefs(mx, true)
			if len(src) == 0 && usesEach(mx) && fe != nil {
				src = resourceRefs(fe, true)
			}
			for _, r := range src {
				members = append(members, "sa:"+strings.TrimPrefix(r, "google_service_account."))
			}
		}
		if len(members) == 0 {
			t.Fatalf("%s: member %s is not a service account of the module, the analysts group or the Pub/Sub service agent", addr, m.text(mx))
		}
		// Role.
		role := m.text(b.Body.Attributes["role"].Expr)
		if r := resourceRefs(b.Body.Attributes["role"].Expr, false); len(r) == 1 && strings.HasPrefix(r[0], "google_project_iam_custom_role.") {
			role = "custom:" + strings.TrimPrefix(r[0], "google_project_iam_custom_role.")
		} else {
			role = strings.Trim(role, `"`)
		}
		// Resources.
		var ons []string
		if tattr == "project" {
			ons = []string{"project"}
		} else {
			tx := b.Body.Attributes[tattr].Expr
			ons = resourceRefs(tx, typ == "google_service_account_iam_member")
			if len(ons) == 0 && usesEach(tx) && fe != nil {
				ons = resourceRefs(fe, typ == "google_service_account_iam_member")
			}
			if len(ons) == 0 {
				t.Fatalf("%s: %s = %s names no resource of the module", addr, tattr, m.text(tx))
			}
		}
		for _, mem := range members {
			for _, on := range ons {
				out[mem] = append(out[mem], role+" on "+on)
			}
		}
	}
	for k := range out {
		sort.Strings(out[k])
		out[k] = slices.Compact(out[k])
	}
	return out
}

// Each service account holds exactly these roles, on these resources, and
// no principal holds anything else. A change here is a change of the
// deployment's security: review it as one.
func TestServiceAccountRolesAreExactlyTheExpectedSet(t *testing.T) {
	lake := func(roles ...string) []string {
		var out []string
		for _, r := range roles {
			out = append(out, "roles/storage."+r+" on google_storage_bucket.lake")
		}
		return out
	}
	pub := func(topics ...string) []string {
		var out []string
		for _, tp := range topics {
			out = append(out, "roles/pubsub.publisher on google_pubsub_topic."+tp)
		}
		return out
	}
	secret := func(secrets ...string) []string {
		var out []string
		for _, s := range secrets {
			out = append(out, "roles/secretmanager.secretAccessor on google_secret_manager_secret."+s)
		}
		return out
	}
	cat := func(parts ...[]string) []string {
		out := slices.Concat(parts...)
		sort.Strings(out)
		return out
	}
	want := map[string][]string{
		"sa:scheduler": cat(lake("objectCreator", "objectViewer"), pub("read_requests"), secret("registry")),
		"sa:trigger":   {"roles/run.invoker on google_cloudfunctions2_function.schedule"},
		"sa:reader": cat(lake("objectCreator", "objectViewer"), pub("loads", "read_requests_dead_letter", "snapshots"), secret("registry", "tenant"),
			[]string{"roles/run.jobsExecutorWithOverrides on google_cloud_run_v2_job.big_read"}),
		"sa:big_read": cat(lake("objectCreator", "objectViewer"), pub("loads", "snapshots"), secret("registry", "tenant")),
		"sa:loader": cat(lake("objectCreator", "objectViewer"), pub("loads", "snapshots_dead_letter"), secret("target"), []string{
			"custom:dataset_creator on project",
			"roles/bigquery.dataEditor on google_bigquery_dataset.all_tenants",
			"roles/bigquery.dataEditor on google_bigquery_dataset.ledger",
			"roles/bigquery.dataEditor on google_bigquery_dataset.staging",
			"roles/bigquery.jobUser on project",
		}),
		"sa:console": cat(lake("objectViewer"), pub("snapshots")),
		"sa:push": {
			"roles/run.invoker on google_cloudfunctions2_function.load",
			"roles/run.invoker on google_cloudfunctions2_function.read",
		},
		"sa:build": {
			"roles/artifactregistry.writer on google_artifact_registry_repository.functions",
			"roles/logging.logWriter on project",
			"roles/storage.objectViewer on google_storage_bucket.sources",
		},
		"group:analysts": {
			"roles/run.invoker on google_cloudfunctions2_function.replay",
			"roles/run.invoker on google_cloudfunctions2_function.snapshots",
		},
		"pubsub-agent": cat(pub("loads_dead_letter", "read_requests_dead_letter", "snapshots_dead_letter"), []string{
			"roles/iam.serviceAccountTokenCreator on google_service_account.push",
			"roles/pubsub.subscriber on google_pubsub_subscription.load",
			"roles/pubsub.subscriber on google_pubsub_subscription.loads_watch",
			"roles/pubsub.subscriber on google_pubsub_subscription.read",
		}),
	}
	m := loadModule(t, ".")
	got := grantsOf(t, m)
	for who := range mergeKeys(want, got) {
		if !slices.Equal(got[who], want[who]) {
			t.Errorf("%s holds\n\t%s\nwant\n\t%s", who, strings.Join(got[who], "\n\t"), strings.Join(want[who], "\n\t"))
		}
	}
	sas := m.resourcesOf("google_service_account")
	for name := range sas {
		if _, ok := want["sa:"+name]; !ok {
			t.Errorf("service account %s has no expected role set in this test", name)
		}
	}
	// Per-target grants are per target: loader[each.key] on its own
	// target's secret, datasets and project.
	for _, addr := range []string{
		"google_secret_manager_secret_iam_member.loader_target", "google_bigquery_dataset_iam_member.loader_staging",
		"google_bigquery_dataset_iam_member.loader_ledger", "google_bigquery_dataset_iam_member.loader_all_tenants",
		"google_project_iam_member.loader_bigquery_jobs", "google_project_iam_member.loader_creates_datasets",
	} {
		if mx := m.text(m.resource(t, addr).Body.Attributes["member"].Expr); !strings.Contains(mx, "google_service_account.loader[each.key]") {
			t.Errorf("%s: member %s must be the target's own loader, google_service_account.loader[each.key]", addr, mx)
		}
	}
}

func mergeKeys(a, b map[string][]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// Every function, the job, the scheduler job, the push subscriptions and
// the builds run as a service account of their own (Replay and Snapshots
// share the console account: one role, two entry points).
func TestEveryWorkloadHasItsOwnServiceAccount(t *testing.T) {
	m := loadModule(t, ".")
	want := map[string]string{
		"google_cloudfunctions2_function.schedule service_config.service_account_email":      "google_service_account.scheduler.email",
		"google_cloudfunctions2_function.read service_config.service_account_email":          "google_service_account.reader.email",
		"google_cloudfunctions2_function.load service_config.service_account_email":          "google_service_account.loader[each.key].email",
		"google_cloudfunctions2_function.replay service_config.service_account_email":        "google_service_account.console.email",
		"google_cloudfunctions2_function.snapshots service_config.service_account_email":     "google_service_account.console.email",
		"google_cloud_run_v2_job.big_read template.template.service_account":                 "google_service_account.big_read.email",
		"google_cloud_scheduler_job.daily_read http_target.oidc_token.service_account_email": "google_service_account.trigger.email",
		"google_pubsub_subscription.read push_config.oidc_token.service_account_email":       "google_service_account.push.email",
		"google_pubsub_subscription.load push_config.oidc_token.service_account_email":       "google_service_account.push.email",
	}
	for name := range m.resourcesOf("google_cloudfunctions2_function") {
		want["google_cloudfunctions2_function."+name+" build_config.service_account"] = "google_service_account.build.id"
	}
	for k, w := range want {
		addr, path, _ := strings.Cut(k, " ")
		a := attr(m.resource(t, addr), strings.Split(path, ".")...)
		if a == nil {
			t.Errorf("%s: %s is not set", addr, path)
			continue
		}
		if got := m.text(a.Expr); got != w {
			t.Errorf("%s: %s = %s, want %s", addr, path, got, w)
		}
	}
	if n := len(m.resourcesOf("google_cloudfunctions2_function")); n != len(config.Functions) {
		t.Errorf("%d function resources, want one per entry point (%d; Load's for_each makes one per target)", n, len(config.Functions))
	}
	for name, j := range m.resourcesOf("google_cloud_scheduler_job") {
		if ht := block(j, "http_target"); ht == nil || block(ht, "oidc_token") == nil {
			t.Errorf("scheduler job %s calls without an OIDC token", name)
		}
	}
}

// Every subscription keeps its messages: push subscriptions dead-letter,
// retry with backoff, wait 600 s, keep the tenant's order and authenticate
// with OIDC; every dead-letter topic has a subscription; none expires; the
// Pub/Sub service agent may move messages to the dead-letter topics.
func TestSubscriptionsDeadLetterAndDeadLettersAreKept(t *testing.T) {
	m := loadModule(t, ".")
	e := m.evaluate(t, exampleInputs(t))
	topics := m.resourcesOf("google_pubsub_topic")
	isDeadLetter := func(name string) bool { return strings.HasSuffix(name, "_dead_letter") }
	kept := map[string]bool{}
	for name, s := range m.resourcesOf("google_pubsub_subscription") {
		addr := "google_pubsub_subscription." + name
		tx := s.Body.Attributes["topic"].Expr
		on := refs(tx)
		if slices.ContainsFunc(on, func(r string) bool { return strings.HasPrefix(r, "each.") }) {
			on = refs(s.Body.Attributes["for_each"].Expr)
		}
		var onTopics []string
		for _, r := range on {
			if tp, ok := strings.CutPrefix(r, "google_pubsub_topic."); ok {
				onTopics = append(onTopics, tp)
				kept[tp] = true
			}
		}
		if len(onTopics) == 0 {
			t.Fatalf("%s: topic %s is not a topic of the module", addr, e.m.text(tx))
		}
		if ttl := attr(s, "expiration_policy", "ttl"); ttl == nil || m.text(ttl.Expr) != `""` {
			t.Errorf("%s: expiration_policy { ttl = \"\" } is missing: an idle subscription would be deleted after 31 days, and its messages with it", addr)
		}
		if slices.ContainsFunc(onTopics, isDeadLetter) {
			if block(s, "dead_letter_policy") != nil || block(s, "push_config") != nil {
				t.Errorf("%s: a dead-letter topic's subscription only keeps messages (pull, no dead-letter policy)", addr)
			}
			continue
		}
		dl := attr(s, "dead_letter_policy", "dead_letter_topic")
		if dl == nil {
			t.Errorf("%s has no dead-letter policy", addr)
			continue
		}
		dlTopic := strings.TrimSuffix(strings.TrimPrefix(m.text(dl.Expr), "google_pubsub_topic."), ".id")
		if want := onTopics[0] + "_dead_letter"; dlTopic != want {
			t.Errorf("%s dead-letters to %s, want %s", addr, m.text(dl.Expr), want)
		}
		if a := attr(s, "dead_letter_policy", "max_delivery_attempts"); a == nil || m.text(a.Expr) != "var.max_delivery_attempts" {
			t.Errorf("%s: max_delivery_attempts must be var.max_delivery_attempts", addr)
		}
		for _, p := range []string{"minimum_backoff", "maximum_backoff"} {
			if a := attr(s, "retry_policy", p); a == nil || !strings.Contains(m.text(a.Expr), "var.push_retry_backoff") {
				t.Errorf("%s: retry_policy.%s must come from var.push_retry_backoff", addr, p)
			}
		}
		if a := s.Body.Attributes["enable_message_ordering"]; a == nil || m.text(a.Expr) != "true" {
			t.Errorf("%s: message ordering (the tenant is the ordering key) must be on", addr)
		}
		if block(s, "push_config") == nil {
			continue // loads-watch: pull, for observers
		}
		if a := s.Body.Attributes["ack_deadline_seconds"]; a == nil || m.text(a.Expr) != "600" {
			t.Errorf("%s: a push subscription's ack deadline must be 600 s (the maximum; it bounds the push request)", addr)
		}
		if attr(s, "push_config", "oidc_token", "audience") == nil {
			t.Errorf("%s: push without an OIDC token audience", addr)
		}
	}
	for name := range topics {
		if isDeadLetter(name) && !kept[name] {
			t.Errorf("dead-letter topic %s has no subscription: its messages would be lost", name)
		}
		if !isDeadLetter(name) {
			if _, ok := topics[name+"_dead_letter"]; !ok {
				t.Errorf("topic %s has no dead-letter topic", name)
			}
		}
	}
	if len(topics) != 6 {
		t.Errorf("%d topics, want the six of DESIGN.md", len(topics))
	}
}

// ---- one source of truth: the Go package config ----

// needs says what each function cannot do without (config.Need, as package
// functions asks for it, and TENANTLAKE_TARGETS for Snapshots, which lists
// loads per target).
var needs = map[string]config.Need{
	"schedule":  {Registry: true, Project: true},
	"read":      {Registry: true, Project: true},
	"load":      {Targets: true, Project: true},
	"replay":    {Targets: true, Project: true},
	"snapshots": {Targets: true, Project: true},
}

var entryPoints = map[string]string{
	"schedule": config.FunctionSchedule, "read": config.FunctionRead, "load": config.FunctionLoad,
	"replay": config.FunctionReplay, "snapshots": config.FunctionSnapshots,
}

func TestNamesAndEnvironmentMatchTheGoCode(t *testing.T) {
	for _, c := range []struct {
		name string
		in   func(*testing.T) inputs
	}{{"example", exampleInputs}, {"other", otherInputs}} {
		t.Run(c.name, func(t *testing.T) { checkDrift(t, c.in(t)) })
	}
}

func checkDrift(t *testing.T, in inputs) {
	m := loadModule(t, ".")
	e := m.evaluate(t, in)
	project := e.vars["project"].AsString()
	targetNames := []string{}
	for k := range e.vars["targets"].AsValueMap() {
		targetNames = append(targetNames, k)
	}
	sort.Strings(targetNames)

	// Entry points.
	fns := m.resourcesOf("google_cloudfunctions2_function")
	var eps []string
	for name, f := range fns {
		ep := e.str(attr(f, "build_config", "entry_point").Expr, nil)
		if ep != entryPoints[name] {
			t.Errorf("function %s: entry point %q, want config's %q", name, ep, entryPoints[name])
		}
		eps = append(eps, ep)
	}
	sort.Strings(eps)
	wantEPs := slices.Clone(config.Functions)
	sort.Strings(wantEPs)
	if !slices.Equal(eps, wantEPs) {
		t.Errorf("entry points %v, want config.Functions %v", eps, wantEPs)
	}

	// Topics: the environment of any function gives them to config.
	env := e.stringMap(e.m.locals["common_env"].Expr, nil)
	cfg, err := config.FromEnv(lookup(env), config.Need{Project: true})
	if err != nil {
		t.Fatalf("the common environment does not pass config.FromEnv: %v", err)
	}
	topics := cfg.Topics
	if e.vars["topic_prefix"].AsString() == "" {
		def, _ := config.FromEnv(lookup(map[string]string{config.EnvLake: "mem://"}), config.Need{})
		if topics != def.Topics {
			t.Errorf("topics %+v, want config's defaults %+v", topics, def.Topics)
		}
	}
	gotTopics := map[string]bool{}
	for name, tp := range m.resourcesOf("google_pubsub_topic") {
		n := e.str(tp.Body.Attributes["name"].Expr, nil)
		gotTopics[n] = true
		if want := topicOf(topics, name); n != want {
			t.Errorf("topic resource %s is named %q, want %q", name, n, want)
		}
	}
	for _, tp := range topics.All() {
		if !gotTopics[tp] {
			t.Errorf("topic %s of config is not created", tp)
		}
	}

	// Subscriptions, filters and push endpoints.
	subs := m.resourcesOf("google_pubsub_subscription")
	read := subs["read"]
	if got := e.str(read.Body.Attributes["name"].Expr, nil); got != config.ReadSubscription(topics) {
		t.Errorf("read subscription %q, want %q", got, config.ReadSubscription(topics))
	}
	wantEndpoint := "https://read.fn.test/projects/" + project + "/topics/" + topics.ReadRequests
	if got := e.str(attr(read, "push_config", "push_endpoint").Expr, nil); got != wantEndpoint {
		t.Errorf("read push endpoint %q, want %q (the Read function's URL, then /projects/P/topics/T)", got, wantEndpoint)
	}
	loads := subs["load"]
	inst := e.forEach(loads, nil)
	if len(inst) != len(targetNames) {
		t.Errorf("%d load subscriptions for %d targets", len(inst), len(targetNames))
	}
	for k, each := range inst {
		if got := e.str(loads.Body.Attributes["name"].Expr, each); got != config.LoadSubscription(topics, k) {
			t.Errorf("load subscription of %s: %q, want %q", k, got, config.LoadSubscription(topics, k))
		}
		if got := e.str(loads.Body.Attributes["filter"].Expr, each); got != config.LoadFilter(k) {
			t.Errorf("load subscription of %s: filter %q, want %q", k, got, config.LoadFilter(k))
		}
		want := "https://load-" + k + ".fn.test/projects/" + project + "/topics/" + topics.Snapshots
		if got := e.str(attr(loads, "push_config", "push_endpoint").Expr, each); got != want {
			t.Errorf("load push endpoint of %s: %q, want %q", k, got, want)
		}
	}
	if got := e.str(subs["loads_watch"].Body.Attributes["name"].Expr, nil); got != config.LoadsSubscription(topics) {
		t.Errorf("loads subscription %q, want %q", got, config.LoadsSubscription(topics))
	}
	keep := subs["keep"]
	var keptNames []string
	for _, each := range e.forEach(keep, nil) {
		keptNames = append(keptNames, e.str(keep.Body.Attributes["name"].Expr, each))
	}
	sort.Strings(keptNames)
	var wantKept []string
	for _, dl := range []string{topics.ReadRequestsDeadLetter, topics.SnapshotsDeadLetter, topics.LoadsDeadLetter} {
		wantKept = append(wantKept, config.DeadLetterSubscription(dl))
	}
	sort.Strings(wantKept)
	if !slices.Equal(keptNames, wantKept) {
		t.Errorf("dead-letter subscriptions %v, want %v", keptNames, wantKept)
	}

	// Environments: only config.Env names, everything each function needs,
	// and values config accepts.
	known := map[string]bool{}
	for _, n := range config.Env {
		known[n] = true
	}
	checkEnv := func(what string, env map[string]string, need config.Need, timeoutSeconds int) config.Config {
		t.Helper()
		for k := range env {
			if !known[k] {
				t.Errorf("%s: environment variable %s is not one config reads (config.Env)", what, k)
			}
		}
		for _, k := range []string{config.EnvLake, config.EnvProject, config.EnvTopicReadRequests, config.EnvTopicSnapshots, config.EnvTopicLoads,
			config.EnvTopicReadRequestsDeadLetter, config.EnvTopicSnapshotsDeadLetter, config.EnvTopicLoadsDeadLetter} {
			if env[k] == "" {
				t.Errorf("%s: %s is not set", what, k)
			}
		}
		c, err := config.FromEnv(lookup(env), need)
		if err != nil {
			t.Errorf("%s: its environment does not pass config.FromEnv: %v", what, err)
			return c
		}
		if c.Topics != topics {
			t.Errorf("%s: topics %+v, want %+v", what, c.Topics, topics)
		}
		if env[config.EnvTenantTimeout] != "" && timeoutSeconds > 0 {
			if limit := time.Duration(timeoutSeconds) * time.Second; c.TenantTimeout >= limit {
				t.Errorf("%s: TENANTLAKE_TENANT_TIMEOUT %s is not under the timeout of %s", what, c.TenantTimeout, limit)
			}
		}
		for _, tg := range c.Targets {
			if strings.Contains(strings.ToLower(tg.URL), "password") || regexp.MustCompile(`://[^/@]*:[^/@]*@`).MatchString(tg.URL) {
				t.Errorf("%s: target %s's URL holds a password", what, tg.Name)
			}
		}
		return c
	}
	for name, f := range fns {
		envAttr := attr(f, "service_config", "environment_variables")
		timeout := attr(f, "service_config", "timeout_seconds")
		if envAttr == nil || timeout == nil {
			t.Fatalf("function %s: environment_variables and timeout_seconds must be set", name)
		}
		instances := e.forEach(f, nil)
		if instances == nil {
			instances = map[string]map[string]cty.Value{"": nil}
		}
		for k, each := range instances {
			what := "function " + name
			if k != "" {
				what += "[" + k + "]"
			}
			secs, _ := strconv.Atoi(e.str(timeout.Expr, each))
			c := checkEnv(what, e.stringMap(envAttr.Expr, each), needs[name], secs)
			switch name {
			case "load":
				if names := c.TargetNames(); !slices.Equal(names, []string{k}) {
					t.Errorf("%s: TENANTLAKE_TARGETS names %v, want exactly [%s]", what, names, k)
				}
			case "replay", "snapshots":
				if names := c.TargetNames(); !slices.Equal(names, targetNames) {
					t.Errorf("%s: TENANTLAKE_TARGETS names %v, want every target %v", what, names, targetNames)
				}
			}
		}
	}

	// The big-read job: its environment, its name in Read's environment.
	readEnv := e.stringMap(attr(fns["read"], "service_config", "environment_variables").Expr, nil)
	if e.vars["big_read"].GetAttr("image").AsString() != "" {
		job := m.resource(t, "google_cloud_run_v2_job.big_read")
		wantJob := "projects/" + project + "/locations/" + e.vars["region"].AsString() + "/jobs/" + e.str(job.Body.Attributes["name"].Expr, nil)
		if readEnv[config.EnvBigReadJob] != wantJob {
			t.Errorf("Read's %s = %q, want the job's full name %q", config.EnvBigReadJob, readEnv[config.EnvBigReadJob], wantJob)
		}
		if readEnv[config.EnvBigTenantBytes] == "0" {
			t.Errorf("Read's %s is 0 although the job is configured with tenant_bytes", config.EnvBigTenantBytes)
		}
		envMap := e.local("env").GetAttr("job")
		je := map[string]string{}
		for k, v := range envMap.AsValueMap() {
			je[k] = v.AsString()
		}
		for _, k := range config.JobEnv {
			if _, set := je[k]; set {
				t.Errorf("the job sets %s, which Read gives each execution as an override", k)
			}
		}
		tmo := e.vars["big_read"].GetAttr("timeout_seconds")
		secs, _ := tmo.AsBigFloat().Int64()
		checkEnv("the big-read job", je, config.Need{Registry: true, Project: true}, int(secs))
		if args := m.text(attr(job, "template", "template", "containers", "args").Expr); args != `["read-job"]` {
			t.Errorf("the job runs %s, want [\"read-job\"]", args)
		}
	} else if _, set := readEnv[config.EnvBigReadJob]; set || readEnv[config.EnvBigTenantBytes] != "0" {
		t.Errorf("without a job image Read must not send tenants to a job: %s=%q %s=%q", config.EnvBigReadJob, readEnv[config.EnvBigReadJob], config.EnvBigTenantBytes, readEnv[config.EnvBigTenantBytes])
	}

	// Secret mounts: every tenant's connection reference file:/secrets/<t>/dsn
	// is mounted into Read.
	mounts := e.local("read_mounts").AsValueMap()
	for _, tn := range e.vars["tenants"].AsValueSlice() {
		found := false
		for _, mt := range mounts {
			if mt.GetAttr("mount_path").AsString()+"/"+mt.GetAttr("path").AsString() == "/secrets/"+tn.AsString()+"/dsn" {
				found = true
			}
		}
		if !found {
			t.Errorf("tenant %s's secret is not mounted at /secrets/%s/dsn", tn.AsString(), tn.AsString())
		}
	}
}

// topicOf maps a topic resource's name to config's topic.
func topicOf(tp config.Topics, resource string) string {
	return map[string]string{
		"read_requests": tp.ReadRequests, "snapshots": tp.Snapshots, "loads": tp.Loads,
		"read_requests_dead_letter": tp.ReadRequestsDeadLetter, "snapshots_dead_letter": tp.SnapshotsDeadLetter,
		"loads_dead_letter": tp.LoadsDeadLetter,
	}[resource]
}

func lookup(env map[string]string) config.Lookup {
	return func(name string) (string, bool) { v, ok := env[name]; return v, ok }
}

// Functions: limits within the platform's, settings from one place, secrets
// at their latest version, the Go runtime at least go.mod's.
func TestFunctionSettings(t *testing.T) {
	m := loadModule(t, ".")
	for _, in := range []inputs{exampleInputs(t), otherInputs(t)} {
		e := m.evaluate(t, in)
		for name, f := range m.resourcesOf("google_cloudfunctions2_function") {
			for _, a := range []string{"available_memory", "available_cpu", "timeout_seconds", "max_instance_count", "min_instance_count", "max_instance_request_concurrency", "ingress_settings", "service_account_email", "environment_variables"} {
				if attr(f, "service_config", a) == nil {
					t.Errorf("function %s: service_config.%s is not set", name, a)
				}
			}
			if rt := m.text(attr(f, "build_config", "runtime").Expr); rt != "var.go_runtime" {
				t.Errorf("function %s: runtime %s, want var.go_runtime", name, rt)
			}
			if block(f, "event_trigger") != nil {
				t.Errorf("function %s has an Eventarc trigger: its subscription could not have our dead-letter policy", name)
			}
			timeout := e.value(attr(f, "service_config", "timeout_seconds").Expr, firstInstance(e, f))
			limit := 3600.0
			if name == "read" || name == "load" {
				limit = 600 // the push subscription's ack deadline
			}
			if s := goValue(timeout).(float64); s < 60 || s > limit {
				t.Errorf("function %s: timeout %v s, want 60 to %v", name, s, limit)
			}
			ingress := m.text(attr(f, "service_config", "ingress_settings").Expr)
			if want := map[bool]string{true: "var.analyst_ingress", false: "var.pipeline_ingress"}[name == "replay" || name == "snapshots"]; ingress != want {
				t.Errorf("function %s: ingress %s, want %s", name, ingress, want)
			}
		}
	}
	// Every mounted secret is its latest version (rotations reach running
	// instances).
	for addr, b := range m.resources {
		var walk func(*hclsyntax.Block)
		walk = func(b *hclsyntax.Block) {
			for _, nb := range b.Body.Blocks {
				if a := nb.Body.Attributes["version"]; a != nil && (nb.Type == "versions" || nb.Type == "items") {
					if m.text(a.Expr) != `"latest"` {
						t.Errorf("%s: a secret is mounted at version %s, want \"latest\"", addr, m.text(a.Expr))
					}
				}
				walk(nb)
			}
		}
		walk(b)
		if attr(b, "service_config", "secret_environment_variables") != nil || block(b, "secret_environment_variables") != nil {
			t.Errorf("%s: secrets as environment variables are read once at start; mount them as files", addr)
		}
	}
	// The runtime: at least go.mod's go directive.
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mv := regexp.MustCompile(`(?m)^go 1\.(\d+)`).FindSubmatch(gomod)
	if mv == nil {
		t.Fatal("go.mod has no go directive")
	}
	need, _ := strconv.Atoi(string(mv[1]))
	rt, _ := m.varValue("go_runtime", cty.NilVal, false)
	have, _ := strconv.Atoi(strings.TrimPrefix(rt.AsString(), "go1"))
	if have < need {
		t.Errorf("go_runtime defaults to %s, older than go.mod's go 1.%d", rt.AsString(), need)
	}
}

func firstInstance(e *evaluator, b *hclsyntax.Block) map[string]cty.Value {
	keys := []string{}
	inst := e.forEach(b, nil)
	for k := range inst {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	return inst[keys[0]]
}

func TestSchedulerJob(t *testing.T) {
	m := loadModule(t, ".")
	j := m.resource(t, "google_cloud_scheduler_job.daily_read")
	for a, want := range map[string]string{"schedule": "var.schedule", "time_zone": "var.time_zone"} {
		if got := m.text(j.Body.Attributes[a].Expr); got != want {
			t.Errorf("scheduler job: %s = %s, want %s", a, got, want)
		}
	}
	if got := m.text(attr(j, "http_target", "uri").Expr); got != "google_cloudfunctions2_function.schedule.service_config[0].uri" {
		t.Errorf("scheduler job calls %s, want the Schedule function", got)
	}
	if got := m.text(attr(j, "http_target", "http_method").Expr); got != `"POST"` {
		t.Errorf("scheduler job method %s, want POST (Schedule refuses anything else)", got)
	}
	if got := m.text(attr(j, "http_target", "oidc_token", "audience").Expr); got != "google_cloudfunctions2_function.schedule.service_config[0].uri" {
		t.Errorf("scheduler job's OIDC audience %s, want the Schedule function's URL", got)
	}
	e := m.evaluate(t, exampleInputs(t))
	d, err := time.ParseDuration(e.str(j.Body.Attributes["attempt_deadline"].Expr, nil))
	if err != nil || d <= 0 || d > 30*time.Minute {
		t.Errorf("attempt_deadline %v (%v): want a positive duration of at most 30 min", d, err)
	}
}

func TestBigQueryDatasets(t *testing.T) {
	m := loadModule(t, ".")
	e := m.evaluate(t, otherInputs(t))
	staging := m.resource(t, "google_bigquery_dataset.staging")
	for k, each := range e.forEach(staging, nil) {
		exp := e.value(staging.Body.Attributes["default_table_expiration_ms"].Expr, each)
		if ms, _ := goValue(exp).(float64); ms < 3600000 {
			t.Errorf("staging dataset of %s: default table expiration %v ms; staged tables must expire (at least an hour)", k, goValue(exp))
		}
	}
	for _, name := range []string{"staging", "ledger", "all_tenants"} {
		d := m.resource(t, "google_bigquery_dataset."+name)
		if a := d.Body.Attributes["delete_contents_on_destroy"]; a == nil || m.text(a.Expr) != "false" {
			t.Errorf("dataset %s: delete_contents_on_destroy must be false", name)
		}
		inst := e.forEach(d, nil)
		if len(inst) != 2 {
			t.Errorf("dataset %s: %d instances, want one per bigquery target (2)", name, len(inst))
		}
		for k, each := range inst {
			id := e.str(d.Body.Attributes["dataset_id"].Expr, each)
			url := e.local("target_urls").GetAttr(k).AsString()
			if !strings.Contains(url, "_dataset="+id) {
				t.Errorf("dataset %s of %s is %s, but the target URL %s names another", name, k, id, url)
			}
		}
	}
	if e.local("target_urls").GetAttr("bq_eu").AsString() != "bigquery://globex-bq-01?name=bq_eu&location=europe-west1&dataset_template=tenant_%7Btenant%7D&staging_dataset=stage&ledger_dataset=tenantlake_ledger&all_tenants_dataset=all_tenants" {
		t.Errorf("bq_eu URL: %s", e.local("target_urls").GetAttr("bq_eu").AsString())
	}
	if got := e.local("target_urls").GetAttr("dw").AsString(); got != "postgresql://loader@dw.internal:5432/dw?name=dw&passfile=/secrets/_target/pgpass&profile_check=false" {
		t.Errorf("dw URL: %s", got)
	}
}

// The evaluator itself: an expression the module cannot evaluate fails the
// test, naming it, instead of passing unnoticed.
func TestEvaluatorRefusesUnknownFunctions(t *testing.T) {
	x, diags := hclsyntax.ParseExpression([]byte(`nosuchfunc("a")`), "x", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	_, diags = x.Value(&hcl.EvalContext{Functions: functions})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "nosuchfunc") {
		t.Fatalf("an unknown function evaluated: %v", diags)
	}
	if got := fmt.Sprint(goValue(hclValue(t, `urlencode("tenant_{tenant}")`))); got != "tenant_%7Btenant%7D" {
		t.Errorf("urlencode: %s", got)
	}
}

// A light stand-in for `terraform validate`: every reference names a
// declared variable, local, resource or data source, and the references
// (depends_on included) form no cycle, which `plan` would refuse.
func TestReferencesResolveWithoutCycles(t *testing.T) {
	for _, dir := range []string{".", examplePath} {
		m := loadModule(t, dir)
		graph := map[string][]string{} // node → what it refers to
		data := map[string]bool{}
		for _, body := range m.files {
			for _, b := range body.Blocks {
				if b.Type == "data" {
					data[b.Labels[0]+"."+b.Labels[1]] = true
				}
			}
		}
		var walk func(node string, body *hclsyntax.Body, iterators map[string]bool)
		check := func(node string, x hclsyntax.Expression, iterators map[string]bool) {
			for _, r := range refs(x) {
				root, name, _ := strings.Cut(r, ".")
				switch {
				case iterators[root] || root == "each" || root == "count" || root == "path" || root == "self" || root == "module":
				case root == "var":
					if _, ok := m.variables[name]; !ok {
						t.Errorf("%s: %s: var.%s is not declared", dir, node, name)
					}
				case root == "local":
					if _, ok := m.locals[name]; !ok {
						t.Errorf("%s: %s: local.%s is not declared", dir, node, name)
					}
					graph[node] = append(graph[node], r)
				case root == "data":
					continue
				default:
					if _, ok := m.resources[r]; !ok {
						t.Errorf("%s: %s: %s is not a resource of the module", dir, node, r)
					}
					graph[node] = append(graph[node], r)
				}
			}
		}
		walk = func(node string, body *hclsyntax.Body, iterators map[string]bool) {
			for name, a := range body.Attributes {
				if name == "depends_on" {
					for _, tr := range a.Expr.Variables() {
						r := tr.RootName()
						if len(tr) > 1 {
							r += "." + tr[1].(hcl.TraverseAttr).Name
						}
						if _, ok := m.resources[r]; !ok {
							t.Errorf("%s: %s depends on %s, which is not a resource of the module", dir, node, r)
						}
						graph[node] = append(graph[node], r)
					}
					continue
				}
				check(node, a.Expr, iterators)
			}
			for _, nb := range body.Blocks {
				it := iterators
				if nb.Type == "dynamic" {
					it = map[string]bool{nb.Labels[0]: true}
					for k := range iterators {
						it[k] = true
					}
				}
				walk(node, nb.Body, it)
			}
		}
		for addr, b := range m.resources {
			walk(addr, b.Body, nil)
		}
		for name, a := range m.locals {
			check("local."+name, a.Expr, nil)
		}
		for name, o := range m.outputs {
			walk("output."+name, o.Body, nil)
		}
		for name, mod := range m.modules {
			walk("module."+name, mod.Body, nil)
		}
		state := map[string]int{} // 1 visiting, 2 done
		var visit func(n string, path []string)
		visit = func(n string, path []string) {
			switch state[n] {
			case 1:
				t.Errorf("%s: reference cycle: %s", dir, strings.Join(append(path, n), " → "))
				return
			case 2:
				return
			}
			state[n] = 1
			for _, d := range graph[n] {
				visit(d, append(path, n))
			}
			state[n] = 2
		}
		nodes := make([]string, 0, len(graph))
		for n := range graph {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		for _, n := range nodes {
			visit(n, nil)
		}
	}
}
