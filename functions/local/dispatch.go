// Package local wires tenantlake's functions together on one machine: an
// in-process Pub/Sub (pstest) never pushes, so a Dispatcher pulls each
// subscription and delivers its messages over HTTP to the functions server
// the way a Pub/Sub push subscription does: a raw push body POSTed to the
// subscription's endpoint, acknowledged on 2xx, negatively acknowledged
// (after a backoff) otherwise, and dead-lettered by Pub/Sub after the
// subscription's maximum delivery attempts.
package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"golang.org/x/sync/errgroup"
)

// Route delivers one subscription's messages to one push endpoint.
type Route struct {
	Subscription string // subscription id
	Endpoint     string // URL, ending in /projects/P/topics/T
}

// Dispatcher delivers messages of Routes until its context ends.
type Dispatcher struct {
	Client *pubsub.Client
	Routes []Route
	// Backoff is how long a failed delivery waits before its message is
	// released for redelivery (Pub/Sub's retry policy; 0: 1 s).
	Backoff time.Duration
	// Deliveries delivers every message this many times at once (0: once):
	// a test of at-least-once delivery with concurrent duplicates.
	Deliveries int
	// MaxInFlight bounds concurrent deliveries per route (0: 16).
	MaxInFlight int
	HTTP        *http.Client
	Log         *slog.Logger

	inflight  atomic.Int64
	delivered atomic.Int64
	mu        sync.Mutex
	lastBusy  time.Time
}

// pushBody is what a Pub/Sub push subscription POSTs.
type pushBody struct {
	Message struct {
		Data        []byte            `json:"data"`
		Attributes  map[string]string `json:"attributes,omitempty"`
		MessageID   string            `json:"messageId"`
		PublishTime time.Time         `json:"publishTime"`
		OrderingKey string            `json:"orderingKey,omitempty"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int32  `json:"deliveryAttempt,omitempty"`
}

// Run delivers until ctx ends; it returns nil then.
func (d *Dispatcher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, r := range d.Routes {
		g.Go(func() error { return d.route(ctx, r) })
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (d *Dispatcher) busy() {
	d.mu.Lock()
	d.lastBusy = time.Now()
	d.mu.Unlock()
}

// Kick marks the dispatcher busy now: call it after publishing, so that
// WaitIdle waits for the messages to be pulled.
func (d *Dispatcher) Kick() { d.busy() }

// Idle reports whether nothing was delivered or in flight for quiet.
func (d *Dispatcher) Idle(quiet time.Duration) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inflight.Load() == 0 && time.Since(d.lastBusy) >= quiet
}

// WaitIdle waits until the dispatcher has been idle for quiet (every
// subscription empty, nothing in flight), or ctx ends.
func (d *Dispatcher) WaitIdle(ctx context.Context, quiet time.Duration) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if d.Idle(quiet) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Delivered is the number of deliveries made so far.
func (d *Dispatcher) Delivered() int64 { return d.delivered.Load() }

func (d *Dispatcher) route(ctx context.Context, r Route) error {
	subPath := "projects/" + d.Client.Project() + "/subscriptions/" + r.Subscription
	max := d.MaxInFlight
	if max <= 0 {
		max = 16
	}
	sem := make(chan struct{}, max)
	for ctx.Err() == nil {
		resp, err := d.Client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{
			Subscription: subPath, MaxMessages: int32(max), ReturnImmediately: true,
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("local dispatcher: pull %s: %w", r.Subscription, err)
		}
		if len(resp.ReceivedMessages) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		d.busy()
		for _, rm := range resp.ReceivedMessages {
			d.inflight.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; d.busy(); d.inflight.Add(-1) }()
				d.deliver(ctx, r, subPath, rm)
			}()
		}
	}
	return nil
}

// deliver POSTs one message (Deliveries times at once), then acks it on
// success or, after the backoff, nacks it.
func (d *Dispatcher) deliver(ctx context.Context, r Route, subPath string, rm *pubsubpb.ReceivedMessage) {
	var b pushBody
	b.Message.Data = rm.Message.Data
	b.Message.Attributes = rm.Message.Attributes
	b.Message.MessageID = rm.Message.MessageId
	b.Message.PublishTime = rm.Message.PublishTime.AsTime()
	b.Message.OrderingKey = rm.Message.OrderingKey
	b.Subscription = subPath
	b.DeliveryAttempt = rm.DeliveryAttempt
	body, err := json.Marshal(b)
	if err != nil {
		d.log().Error("local dispatcher: encode push body", "subscription", r.Subscription, "err", err.Error())
		return
	}
	n := max(d.Deliveries, 1)
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.post(ctx, r.Endpoint, body)
		}()
	}
	wg.Wait()
	d.delivered.Add(int64(n))
	var failed error
	for _, e := range results {
		if e != nil {
			failed = e
		}
	}
	actx := context.WithoutCancel(ctx)
	if failed == nil {
		if err := d.Client.SubscriptionAdminClient.Acknowledge(actx, &pubsubpb.AcknowledgeRequest{Subscription: subPath, AckIds: []string{rm.AckId}}); err != nil {
			d.log().Error("local dispatcher: acknowledge", "subscription", r.Subscription, "err", err.Error())
		}
		return
	}
	d.log().Warn("delivery failed; the message will be redelivered", "subscription", r.Subscription, "message_id", rm.Message.MessageId,
		"tenant", rm.Message.Attributes["tenant"], "attempt", rm.DeliveryAttempt, "err", failed.Error())
	backoff := d.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	select {
	case <-ctx.Done():
	case <-time.After(backoff):
	}
	if err := d.Client.SubscriptionAdminClient.ModifyAckDeadline(actx, &pubsubpb.ModifyAckDeadlineRequest{
		Subscription: subPath, AckIds: []string{rm.AckId}, AckDeadlineSeconds: 0,
	}); err != nil {
		d.log().Error("local dispatcher: nack", "subscription", r.Subscription, "err", err.Error())
	}
}

func (d *Dispatcher) post(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	c := d.HTTP
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	var msg bytes.Buffer
	_, _ = msg.ReadFrom(http.MaxBytesReader(nil, resp.Body, 2000))
	if err := resp.Body.Close(); err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, bytes.TrimSpace(msg.Bytes()))
	}
	return nil
}

func (d *Dispatcher) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}
