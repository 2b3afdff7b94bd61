package events

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRoundTrip: what New encodes, Decode reads back, with the contract's
// attributes.
func TestRoundTrip(t *testing.T) {
	in := &SnapshotCommitted{Tenant: "acme", SnapshotID: "20261121T020304.123Z", ManifestURL: "file:///l/x", Reason: "replay", Target: "bq", Tables: []string{"orders"}, RequestID: "replay-1"}
	m, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	if m.Attributes[AttrType] != TypeSnapshotCommitted || m.Attributes[AttrTenant] != "acme" || m.Attributes[AttrTarget] != "bq" {
		t.Errorf("attributes %v", m.Attributes)
	}
	var out SnapshotCommitted
	if err := Decode(m, &out); err != nil {
		t.Fatal(err)
	}
	if out.Version != Version || out.SnapshotID != in.SnapshotID || out.Tables[0] != "orders" {
		t.Errorf("decoded %+v", out)
	}
}

// TestDecodeRefuses: every malformed message is ErrMalformed.
func TestDecodeRefuses(t *testing.T) {
	good := `{"version":1,"tenant":"acme","request_id":"r1","reason":"scheduled","requested_at":"2026-12-01T02:00:00Z"}`
	attrs := map[string]string{AttrType: TypeReadRequested, AttrTenant: "acme"}
	cases := map[string]Message{
		"wrong type":      {Data: []byte(good), Attributes: map[string]string{AttrType: TypeLoadFinished, AttrTenant: "acme"}},
		"no type":         {Data: []byte(good), Attributes: map[string]string{AttrTenant: "acme"}},
		"tenant mismatch": {Data: []byte(good), Attributes: map[string]string{AttrType: TypeReadRequested, AttrTenant: "globex"}},
		"not JSON":        {Data: []byte("{"), Attributes: attrs},
		"unknown field":   {Data: []byte(strings.Replace(good, `"version":1`, `"version":1,"x":2`, 1)), Attributes: attrs},
		"newer version":   {Data: []byte(strings.Replace(good, `"version":1`, `"version":2`, 1)), Attributes: attrs},
		"bad tenant":      {Data: []byte(strings.Replace(good, `"acme"`, `"../x"`, 1)), Attributes: map[string]string{AttrType: TypeReadRequested, AttrTenant: "../x"}},
		"bad request id":  {Data: []byte(strings.Replace(good, `"r1"`, `"r/1"`, 1)), Attributes: attrs},
		"bad reason":      {Data: []byte(strings.Replace(good, `"scheduled"`, `"replay"`, 1)), Attributes: attrs},
		"no time":         {Data: []byte(strings.Replace(good, `,"requested_at":"2026-12-01T02:00:00Z"`, ``, 1)), Attributes: attrs},
		"two values":      {Data: []byte(good + good), Attributes: attrs},
		"oversized":       {Data: []byte(good + strings.Repeat(" ", MaxBody)), Attributes: attrs},
		"empty":           {Attributes: attrs},
	}
	for name, m := range cases {
		var r ReadRequested
		if err := Decode(m, &r); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	var r ReadRequested
	if err := Decode(Message{Data: []byte(good), Attributes: attrs}, &r); err != nil || r.RequestedAt != time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC) {
		t.Errorf("the good message: %+v, %v", r, err)
	}
	if _, err := New(&SnapshotCommitted{Tenant: "acme", SnapshotID: "bad"}); err == nil {
		t.Error("New published an invalid body")
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
