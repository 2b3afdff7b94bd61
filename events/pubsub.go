package events

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tenantlake/tenantlake/config"
)

// Publisher publishes messages to topics by name. Publish returns once the
// service has the message (its id), so a handler that acknowledges its
// input after Publish never loses an event.
type Publisher interface {
	Publish(ctx context.Context, topic string, m Message) (id string, err error)
}

// PubSub publishes to Google Cloud Pub/Sub, the gcloud emulator or pstest
// (PUBSUB_EMULATOR_HOST, or the client options given), with message
// ordering on: the ordering key is the tenant.
type PubSub struct {
	client  *pubsub.Client
	mu      sync.Mutex
	pubs    map[string]*pubsub.Publisher
	drained map[string]bool // subscription/message id pairs Drain returned
}

// Dial connects to Pub/Sub in project. Credentials come from the environment
// (Application Default Credentials); with PUBSUB_EMULATOR_HOST set, the
// client talks to that emulator without authentication.
func Dial(ctx context.Context, project string, opts ...option.ClientOption) (*PubSub, error) {
	c, err := pubsub.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("events: pubsub client for project %s: %w", project, err)
	}
	return &PubSub{client: c, pubs: map[string]*pubsub.Publisher{}}, nil
}

// Client is the underlying client (for subscriptions and administration).
func (p *PubSub) Client() *pubsub.Client { return p.client }

func (p *PubSub) publisher(topic string) *pubsub.Publisher {
	p.mu.Lock()
	defer p.mu.Unlock()
	pub, ok := p.pubs[topic]
	if !ok {
		pub = p.client.Publisher(topic)
		pub.EnableMessageOrdering = true
		pub.PublishSettings.DelayThreshold = time.Millisecond
		p.pubs[topic] = pub
	}
	return pub
}

// Publish implements Publisher.
func (p *PubSub) Publish(ctx context.Context, topic string, m Message) (string, error) {
	pub := p.publisher(topic)
	key := m.Attributes[AttrTenant]
	id, err := pub.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: m.Attributes, OrderingKey: key}).Get(ctx)
	if err != nil {
		// A failed publish pauses the ordering key; the caller's retry
		// (a redelivery) must be able to publish again.
		pub.ResumePublish(key)
		return "", fmt.Errorf("events: publish %s for tenant %s to %s: %w", m.Attributes[AttrType], key, topic, err)
	}
	return id, nil
}

// Close flushes and stops every publisher, then closes the client.
func (p *PubSub) Close() error {
	p.mu.Lock()
	for _, pub := range p.pubs {
		pub.Stop()
	}
	p.mu.Unlock()
	return p.client.Close()
}

// Subscription describes one subscription of the deployment, as Terraform
// creates it on GCP and Ensure creates it locally.
type Subscription struct {
	Name, Topic string
	Filter      string // Pub/Sub filter on attributes; "" for none
	// PushEndpoint, when set, makes it a push subscription (the gcloud
	// emulator pushes; pstest does not, a dispatcher pulls instead).
	PushEndpoint        string
	DeadLetterTopic     string // "" for none
	MaxDeliveryAttempts int
	AckDeadline         time.Duration
	Ordering            bool
}

// Layout is the deployment's subscriptions for cfg (DESIGN.md): Read's on
// read-requests, one Load subscription per target on snapshots (filtered on
// the target attribute), a pull subscription on loads for observers, and one
// on every dead-letter topic. pushBase, when set, is the functions server's
// URL: push endpoints become pushBase + "/<Function>[/<target>]/projects/P/topics/T",
// the path from which the functions framework converts a raw push body.
func Layout(cfg config.Config, project, pushBase string, maxAttempts int) []Subscription {
	t := cfg.Topics
	push := func(fn, topic string) string {
		if pushBase == "" {
			return ""
		}
		return fmt.Sprintf("%s/%s/projects/%s/topics/%s", pushBase, fn, project, topic)
	}
	subs := []Subscription{{
		Name: config.ReadSubscription(t), Topic: t.ReadRequests, PushEndpoint: push(config.FunctionRead, t.ReadRequests),
		DeadLetterTopic: t.ReadRequestsDeadLetter, MaxDeliveryAttempts: maxAttempts, AckDeadline: 600 * time.Second, Ordering: true,
	}}
	for _, tg := range cfg.Targets {
		subs = append(subs, Subscription{
			Name: config.LoadSubscription(t, tg.Name), Topic: t.Snapshots, Filter: config.LoadFilter(tg.Name),
			PushEndpoint:    push(config.FunctionLoad+"/"+tg.Name, t.Snapshots),
			DeadLetterTopic: t.SnapshotsDeadLetter, MaxDeliveryAttempts: maxAttempts, AckDeadline: 600 * time.Second, Ordering: true,
		})
	}
	subs = append(subs, Subscription{Name: config.LoadsSubscription(t), Topic: t.Loads, AckDeadline: 60 * time.Second, Ordering: true})
	for _, dl := range []string{t.ReadRequestsDeadLetter, t.SnapshotsDeadLetter, t.LoadsDeadLetter} {
		subs = append(subs, Subscription{Name: config.DeadLetterSubscription(dl), Topic: dl, AckDeadline: 60 * time.Second})
	}
	return subs
}

// Ensure creates every topic of t and every subscription in subs that does
// not exist yet (for one machine and tests; on GCP Terraform owns them).
func (p *PubSub) Ensure(ctx context.Context, t config.Topics, subs []Subscription) error {
	project := p.client.Project()
	for _, name := range t.All() {
		_, err := p.client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: TopicPath(project, name)})
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("events: create topic %s: %w", name, err)
		}
	}
	for _, s := range subs {
		ps := &pubsubpb.Subscription{
			Name:                  SubscriptionPath(project, s.Name),
			Topic:                 TopicPath(project, s.Topic),
			Filter:                s.Filter,
			AckDeadlineSeconds:    int32(s.AckDeadline / time.Second),
			EnableMessageOrdering: s.Ordering,
		}
		if s.PushEndpoint != "" {
			ps.PushConfig = &pubsubpb.PushConfig{PushEndpoint: s.PushEndpoint}
		}
		if s.DeadLetterTopic != "" {
			ps.DeadLetterPolicy = &pubsubpb.DeadLetterPolicy{DeadLetterTopic: TopicPath(project, s.DeadLetterTopic), MaxDeliveryAttempts: int32(s.MaxDeliveryAttempts)}
			ps.RetryPolicy = &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(time.Second), MaximumBackoff: durationpb.New(10 * time.Second)}
		}
		_, err := p.client.SubscriptionAdminClient.CreateSubscription(ctx, ps)
		if err != nil && status.Code(err) != codes.AlreadyExists {
			return fmt.Errorf("events: create subscription %s: %w", s.Name, err)
		}
	}
	return nil
}

// TopicPath and SubscriptionPath are the resource names Pub/Sub uses.
func TopicPath(project, topic string) string { return "projects/" + project + "/topics/" + topic }
func SubscriptionPath(project, sub string) string {
	return "projects/" + project + "/subscriptions/" + sub
}

// Drain pulls and acknowledges every message waiting on a pull
// subscription, returning them: how `tenantlake run` reports what reached
// the loads and dead-letter topics.
func (p *PubSub) Drain(ctx context.Context, sub string) ([]Message, error) {
	var out []Message
	for {
		resp, err := p.client.SubscriptionAdminClient.Pull(ctx, &pubsubpb.PullRequest{
			Subscription: SubscriptionPath(p.client.Project(), sub), MaxMessages: 1000, ReturnImmediately: true,
		})
		if err != nil {
			return out, fmt.Errorf("events: pull %s: %w", sub, err)
		}
		if len(resp.ReceivedMessages) == 0 {
			return out, nil
		}
		var ids []string
		fresh := 0
		p.mu.Lock()
		if p.drained == nil {
			p.drained = map[string]bool{}
		}
		for _, rm := range resp.ReceivedMessages {
			ids = append(ids, rm.AckId)
			// pstest dead-letters a message again on every later pull of
			// its source subscription, under the same message id: a
			// message id is returned once.
			key := sub + "/" + rm.Message.MessageId
			if p.drained[key] {
				continue
			}
			p.drained[key] = true
			fresh++
			out = append(out, Message{Data: rm.Message.Data, Attributes: rm.Message.Attributes})
		}
		p.mu.Unlock()
		if err := p.client.SubscriptionAdminClient.Acknowledge(ctx, &pubsubpb.AcknowledgeRequest{
			Subscription: SubscriptionPath(p.client.Project(), sub), AckIds: ids,
		}); err != nil {
			return out, fmt.Errorf("events: acknowledge on %s: %w", sub, err)
		}
		if fresh == 0 {
			return out, nil
		}
	}
}
