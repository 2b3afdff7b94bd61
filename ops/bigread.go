package ops

import (
	"context"
	"fmt"

	run "cloud.google.com/go/run/apiv2"
	"cloud.google.com/go/run/apiv2/runpb"
	"github.com/googleapis/gax-go/v2"

	"github.com/tenantlake/tenantlake/config"
)

// JobRunner is the one method of the Cloud Run Admin API's JobsClient
// (cloud.google.com/go/run/apiv2) that CloudRunJob calls; *run.JobsClient
// has it.
type JobRunner interface {
	RunJob(ctx context.Context, req *runpb.RunJobRequest, opts ...gax.CallOption) (*run.RunJobOperation, error)
}

var _ JobRunner = (*run.JobsClient)(nil)

// CloudRunJob starts executions of the big-read Cloud Run job. The job runs
// `tenantlake read-job` in every task; the execution's overrides name the
// tenant and the request (config.EnvJobTenant, config.EnvJobRequestID).
type CloudRunJob struct {
	// Name is the job, projects/P/locations/L/jobs/J.
	Name   string
	Client JobRunner
}

var _ JobStarter = (*CloudRunJob)(nil)

// BigReadRequest is the RunJob request that starts the big-read job name
// for one tenant's request: the job's own task count and settings, with
// the tenant and request id as environment overrides.
func BigReadRequest(name, tenantID, requestID string) *runpb.RunJobRequest {
	env := func(k, v string) *runpb.EnvVar {
		return &runpb.EnvVar{Name: k, Values: &runpb.EnvVar_Value{Value: v}}
	}
	return &runpb.RunJobRequest{
		Name: name,
		Overrides: &runpb.RunJobRequest_Overrides{
			ContainerOverrides: []*runpb.RunJobRequest_Overrides_ContainerOverride{{
				Env: []*runpb.EnvVar{env(config.EnvJobTenant, tenantID), env(config.EnvJobRequestID, requestID)},
			}},
		},
	}
}

// StartBigRead starts one execution and returns its name (or, when the API
// does not say yet, the operation's). It does not wait for the execution.
func (j *CloudRunJob) StartBigRead(ctx context.Context, tenantID, requestID string) (string, error) {
	op, err := j.Client.RunJob(ctx, BigReadRequest(j.Name, tenantID, requestID))
	if err != nil {
		return "", fmt.Errorf("cloud run: run job %s: %w", j.Name, err)
	}
	if md, err := op.Metadata(); err == nil && md != nil && md.GetName() != "" {
		return md.GetName(), nil
	}
	return op.Name(), nil
}

// Close closes the client, when it can be closed (a *run.JobsClient).
func (j *CloudRunJob) Close() error {
	if c, ok := j.Client.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
