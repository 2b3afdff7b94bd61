// Package events is DESIGN.md's event contract: the bodies of the
// read-requests, snapshots and loads topics, their attributes, and how they
// are published to Pub/Sub and checked on receipt.
//
// Every body is JSON with a "version" field (Version); attributes are
// "type", "tenant" and, for a message aimed at one target, "target"; the
// ordering key is the tenant. Decode refuses a body that is malformed, of an
// unknown type or version, has unknown fields, or names an invalid tenant,
// snapshot, reason or target: such a message is never retried (ErrMalformed).
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tenantlake/tenantlake/config"
	"github.com/tenantlake/tenantlake/internal/strictjson"
	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/tenant"
	"github.com/tenantlake/tenantlake/writers"
)

// Version is the body format this build writes and reads.
const Version = 1

// Event types (the "type" attribute).
const (
	TypeReadRequested     = "tenantlake.read.requested"
	TypeSnapshotCommitted = "tenantlake.snapshot.committed"
	TypeLoadFinished      = "tenantlake.load.finished"
)

// Attribute names.
const (
	AttrType   = "type"
	AttrTenant = "tenant"
	AttrTarget = "target"
)

// ErrMalformed: a message that no retry can make valid. Handlers
// acknowledge it and copy it to the topic's dead-letter topic.
var ErrMalformed = errors.New("malformed message")

// ReadRequested asks for one tenant's read (topic read-requests).
type ReadRequested struct {
	Version     int       `json:"version"`
	Tenant      string    `json:"tenant"`
	RequestID   string    `json:"request_id"`
	Reason      string    `json:"reason"`       // scheduled or manual
	RequestedAt time.Time `json:"requested_at"` // the schedule time for a scheduled read
}

// SnapshotCommitted says a snapshot is in the lake and asks the targets to
// load it (topic snapshots).
type SnapshotCommitted struct {
	Version     int      `json:"version"`
	Tenant      string   `json:"tenant"`
	SnapshotID  string   `json:"snapshot_id"`
	ManifestURL string   `json:"manifest_url"`
	Reason      string   `json:"reason"`           // scheduled, replay or manual
	Target      string   `json:"target,omitempty"` // only this target loads it; empty: every target
	Tables      []string `json:"tables,omitempty"` // destination tables to load; empty: all
	RequestID   string   `json:"request_id"`
}

// LoadFinished is one target's outcome of one snapshot (topic loads). A read
// that failed is reported here too, with Outcome failed, no target and no
// snapshot.
type LoadFinished struct {
	Version int `json:"version"`
	writers.Outcome
}

// Message is one message to publish or one received.
type Message struct {
	Data       []byte
	Attributes map[string]string
}

// New encodes body (one of the three body types) as a message with its
// attributes; the ordering key is the tenant (Attributes[AttrTenant]).
func New(body any) (Message, error) {
	var typ, tn, target string
	switch b := body.(type) {
	case *ReadRequested:
		b.Version, typ, tn = Version, TypeReadRequested, b.Tenant
	case *SnapshotCommitted:
		b.Version, typ, tn, target = Version, TypeSnapshotCommitted, b.Tenant, b.Target
	case *LoadFinished:
		b.Version, typ, tn, target = Version, TypeLoadFinished, b.Tenant, b.Target
	default:
		return Message{}, fmt.Errorf("events: cannot publish a %T", body)
	}
	if err := check(body); err != nil {
		return Message{}, fmt.Errorf("events: refusing to publish %s: %w", typ, err)
	}
	data, err := json.Marshal(body)
	if err != nil {
		return Message{}, fmt.Errorf("events: encode %s: %w", typ, err)
	}
	attrs := map[string]string{AttrType: typ, AttrTenant: tn}
	if target != "" {
		attrs[AttrTarget] = target
	}
	return Message{Data: data, Attributes: attrs}, nil
}

// MaxClockSkew is how far ahead of this machine's clock a schedule time or
// requested_at may be (the scheduler's and this machine's clocks differ a
// little). A time further ahead is refused: a read request "for 2099" would
// make the real scheduled request of that time a duplicate, and a
// redelivered request could not find the snapshot it already took.
const MaxClockSkew = 5 * time.Minute

// MaxBody bounds a message body this build accepts (Pub/Sub allows 10 MB;
// our bodies are a few kB).
const MaxBody = 1 << 20

// Decode checks m's type attribute against want's type, then decodes and
// checks its body into want (a *ReadRequested, *SnapshotCommitted or
// *LoadFinished). Every failure wraps ErrMalformed.
func Decode(m Message, want any) error {
	var typ string
	switch want.(type) {
	case *ReadRequested:
		typ = TypeReadRequested
	case *SnapshotCommitted:
		typ = TypeSnapshotCommitted
	case *LoadFinished:
		typ = TypeLoadFinished
	default:
		return fmt.Errorf("events: cannot decode into %T", want)
	}
	if got := m.Attributes[AttrType]; got != typ {
		return fmt.Errorf("%w: type attribute %.60q, want %q", ErrMalformed, got, typ)
	}
	if len(m.Data) > MaxBody {
		return fmt.Errorf("%w: %s body of %d bytes (at most %d)", ErrMalformed, typ, len(m.Data), MaxBody)
	}
	if err := strictjson.Check(m.Data, strictjson.Options{}); err != nil {
		return fmt.Errorf("%w: %s body: %v", ErrMalformed, typ, err)
	}
	dec := json.NewDecoder(bytes.NewReader(m.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(want); err != nil {
		return fmt.Errorf("%w: %s body: %v", ErrMalformed, typ, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: %s body: data after the JSON value", ErrMalformed, typ)
	}
	if err := check(want); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, typ, err)
	}
	if got := m.Attributes[AttrTenant]; got != tenantOf(want) {
		return fmt.Errorf("%w: %s: tenant attribute %.80q differs from the body's %q", ErrMalformed, typ, got, tenantOf(want))
	}
	// The subscriptions route on the target attribute and the Load function
	// obeys the body's target: where they differ, the message would be
	// delivered to one target and ignored there, silently.
	if got, body := m.Attributes[AttrTarget], targetOf(want); got != body {
		return fmt.Errorf("%w: %s: target attribute %.60q differs from the body's %q", ErrMalformed, typ, got, body)
	}
	return nil
}

func targetOf(body any) string {
	switch b := body.(type) {
	case *SnapshotCommitted:
		return b.Target
	case *LoadFinished:
		return b.Target
	}
	return ""
}

func tenantOf(body any) string {
	switch b := body.(type) {
	case *ReadRequested:
		return b.Tenant
	case *SnapshotCommitted:
		return b.Tenant
	case *LoadFinished:
		return b.Tenant
	}
	return ""
}

// check validates a body's fields.
func check(body any) error {
	var errs []error
	version := func(v int) {
		if v != Version {
			errs = append(errs, fmt.Errorf("version %d (this build reads %d)", v, Version))
		}
	}
	requestID := func(id string) {
		if err := ValidRequestID(id); err != nil {
			errs = append(errs, err)
		}
	}
	snapshot := func(id string) {
		if _, err := lake.ParseSnapshotID(id); err != nil {
			errs = append(errs, fmt.Errorf("snapshot_id: %v", err))
		}
	}
	target := func(name string) {
		if name != "" {
			if err := config.ValidTargetName(name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	switch b := body.(type) {
	case *ReadRequested:
		version(b.Version)
		errs = append(errs, tenant.ValidateID(b.Tenant))
		requestID(b.RequestID)
		if b.Reason != writers.ReasonScheduled && b.Reason != writers.ReasonManual {
			errs = append(errs, fmt.Errorf("reason %.40q: want scheduled or manual", b.Reason))
		}
		if b.RequestedAt.IsZero() {
			errs = append(errs, errors.New("requested_at is missing"))
		} else if b.RequestedAt.After(time.Now().Add(MaxClockSkew)) {
			errs = append(errs, fmt.Errorf("requested_at %s is in the future", b.RequestedAt.UTC().Format(time.RFC3339)))
		}
	case *SnapshotCommitted:
		version(b.Version)
		errs = append(errs, tenant.ValidateID(b.Tenant))
		snapshot(b.SnapshotID)
		requestID(b.RequestID)
		target(b.Target)
		switch b.Reason {
		case writers.ReasonScheduled, writers.ReasonManual, writers.ReasonReplay:
		default:
			errs = append(errs, fmt.Errorf("reason %.40q: want scheduled, replay or manual", b.Reason))
		}
		for _, t := range b.Tables {
			if !tableNameRE(t) {
				errs = append(errs, fmt.Errorf("table %.80q is not a destination table name", t))
			}
		}
	case *LoadFinished:
		version(b.Version)
		errs = append(errs, tenant.ValidateID(b.Tenant))
		if b.SnapshotID != "" {
			snapshot(b.SnapshotID)
		}
		target(b.Target)
	}
	return errors.Join(errs...)
}

// tableNameRE: destination table names as the reader makes them.
func tableNameRE(s string) bool {
	if s == "" || len(s) > 300 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ValidRequestID checks a request id: 1 to 100 characters of letters,
// digits, '_', '.' and '-', starting with a letter or digit (it becomes part
// of lake record names).
func ValidRequestID(id string) error {
	if id == "" || len(id) > 100 {
		return fmt.Errorf("request_id %.40q: want 1 to 100 characters", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-' || c == '.')
		if !ok || i > 0 && c == '.' && id[i-1] == '.' {
			return fmt.Errorf("request_id %.40q: only letters, digits, '_', '-' and '.' are allowed", id)
		}
	}
	if id[len(id)-1] == '.' {
		return fmt.Errorf("request_id %q: must not end with '.'", id)
	}
	return nil
}

// ScheduledRequestID is the request id of the scheduled reads of schedule
// time at (to the second): Cloud Scheduler's retries of one run carry the
// same schedule time, so they derive the same ids.
func ScheduledRequestID(at time.Time) string {
	return "scheduled-" + at.UTC().Format("20060102T150405Z")
}
