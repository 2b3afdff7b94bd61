package events

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tenantlake/tenantlake/writers"
)

func snapshotMessage(t *testing.T, target string) Message {
	t.Helper()
	m, err := New(&SnapshotCommitted{Tenant: "acme", SnapshotID: "20261121T020304.123Z", ManifestURL: "file:///l/m",
		Reason: writers.ReasonReplay, Target: target, RequestID: "replay-1"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDecodeRefusesAmbiguousOrMisroutedMessages: a body with a repeated key
// (which encoding/json would read as its last value) and a target attribute
// that differs from the body's target (routed to one target, ignored there)
// are malformed, never acted on.
func TestDecodeRefusesAmbiguousOrMisroutedMessages(t *testing.T) {
	good := snapshotMessage(t, "warehouse")
	var ev SnapshotCommitted
	if err := Decode(good, &ev); err != nil || ev.Target != "warehouse" || ev.Tenant != "acme" {
		t.Fatalf("a good message: %+v, %v", ev, err)
	}
	if err := Decode(snapshotMessage(t, ""), &SnapshotCommitted{}); err != nil {
		t.Fatalf("a message for every target: %v", err)
	}
	withAttrs := func(m Message, kv ...string) Message {
		attrs := map[string]string{}
		for k, v := range m.Attributes {
			attrs[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(attrs, kv[i])
			} else {
				attrs[kv[i]] = kv[i+1]
			}
		}
		return Message{Data: m.Data, Attributes: attrs}
	}
	repeated := func(m Message, field, value string) Message {
		s := string(m.Data)
		return Message{Data: []byte(strings.Replace(s, "{", "{"+field+":"+value+",", 1)), Attributes: m.Attributes}
	}
	for name, m := range map[string]Message{
		"target attribute differs":       withAttrs(good, AttrTarget, "other"),
		"target attribute missing":       withAttrs(good, AttrTarget, ""),
		"target attribute, none in body": withAttrs(snapshotMessage(t, ""), AttrTarget, "warehouse"),
		"tenant attribute differs":       withAttrs(good, AttrTenant, "globex"),
		"tenant repeated":                repeated(good, `"tenant"`, `"globex"`),
		"target repeated in other case":  repeated(good, `"TARGET"`, `"other"`),
		"snapshot id repeated":           repeated(good, `"snapshot_id"`, `"20261121T020304.124Z"`),
	} {
		var ev SnapshotCommitted
		err := Decode(m, &ev)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %v (%+v), want ErrMalformed", name, err, ev)
		}
	}
}

// TestLoadFinishedRoundTrip: what New publishes for a load outcome (nil
// slices encoded as null included) is what Decode accepts.
func TestLoadFinishedRoundTrip(t *testing.T) {
	now := time.Now().UTC()
	m, err := New(&LoadFinished{Outcome: writers.Outcome{Tenant: "acme", Target: "warehouse", SnapshotID: "20261121T020304.123Z",
		Outcome: writers.OutcomeFailed, StartedAt: now, FinishedAt: now}})
	if err != nil {
		t.Fatal(err)
	}
	var lf LoadFinished
	if err := Decode(m, &lf); err != nil || lf.Target != "warehouse" || lf.Outcome.Outcome != writers.OutcomeFailed {
		t.Fatalf("round trip: %+v, %v", lf, err)
	}
}

// TestDecodeRefusesFutureReadRequests: a read request whose requested_at is
// far ahead of the clock is malformed.
func TestDecodeRefusesFutureReadRequests(t *testing.T) {
	for ahead, ok := range map[time.Duration]bool{0: true, MaxClockSkew - time.Minute: true, MaxClockSkew + time.Minute: false} {
		body := fmt.Sprintf(`{"version":1,"tenant":"acme","request_id":"manual-1","reason":"manual","requested_at":%q}`, time.Now().Add(ahead).UTC().Format(time.RFC3339Nano))
		err := Decode(Message{Data: []byte(body), Attributes: map[string]string{"type": TypeReadRequested, "tenant": "acme"}}, &ReadRequested{})
		if (err == nil) != ok {
			t.Errorf("requested_at %s ahead: %v, want accepted %v", ahead, err, ok)
		}
	}
}
