package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The instances of one connector (the same name, on several hosts) elect
// their leader with Kafka's own group membership: each is a member of the
// consumer group cdc-<name>, subscribed to the checkpoint topic, whose one
// partition the group's balancer gives to one member. That member leads;
// the others wait. The group coordinator notices a member that stops
// heartbeating within the session timeout, and gives the partition to
// another. Nothing is consumed: the topic is paused.
//
// Election alone does not keep a paused leader (a long GC pause, a frozen
// VM) from writing after its successor began: the transactional id does.
// Every leader takes the connector's transactional id before it reads the
// checkpoint, which fences the producer of any earlier leader at the brokers.

// DefaultSessionTimeout is how long the group coordinator waits for a
// silent member before it gives its leadership to another: the brokers'
// smallest by default (group.min.session.timeout.ms).
const DefaultSessionTimeout = 6 * time.Second

// LeadOptions configure an instance's membership in its connector's group.
type LeadOptions struct {
	// Group is the consumer group of the connector's instances.
	Group string
	// SessionTimeout: see DefaultSessionTimeout (used if zero).
	SessionTimeout time.Duration
	// OnChange, if set, is told when this instance starts or stops leading.
	OnChange func(leading bool)
	Log      *slog.Logger
}

// Lead joins the connector's group and runs lead while this instance holds
// the leadership, again each time it gets it back, until ctx ends or lead
// fails. lead's context ends when the leadership is revoked (another member
// rebalanced it away) or lost (this member's session expired); Lead waits
// for lead to return before it hands the leadership on, when the group lets
// it. A nil error from lead while it still leads ends Lead too.
func (k *Kafka) Lead(ctx context.Context, opts LeadOptions, lead func(context.Context) error) error {
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if err := k.ensureTopic(k.cfg.CheckpointTopic, 1, true, "compact"); err != nil {
		return fmt.Errorf("checkpoint topic: %w", err)
	}
	e := &election{topic: k.cfg.CheckpointTopic, lead: lead, opts: opts, done: make(chan error, 1)}
	client, err := kgo.NewClient(k.clientOptions(
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(k.cfg.CheckpointTopic),
		kgo.SessionTimeout(opts.SessionTimeout),
		kgo.HeartbeatInterval(opts.SessionTimeout/6),
		// A rebalance waits this long for members that do not rejoin: a dead
		// leader's, when a new standby joins right after its death (as a
		// replacement pod does). A live member rejoins within a heartbeat
		// (a sixth of the session), and keeps its partition (sticky): nothing
		// to wait for. Longer, a kill just after a standby joined took 15 s.
		kgo.RebalanceTimeout(opts.SessionTimeout/2),
		// Sticky: a standby joining or leaving does not move the leadership.
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(e.assigned),
		kgo.OnPartitionsRevoked(e.revoked),
		kgo.OnPartitionsLost(e.revoked),
	)...)
	if err != nil {
		return err
	}
	client.PauseFetchTopics(k.cfg.CheckpointTopic)
	defer func() {
		e.stop() // leave the group only once lead has returned
		client.Close()
	}()
	opts.Log.Info("standing by: this instance leads when its connector's group gives it the leadership", "group", opts.Group, "session_timeout", opts.SessionTimeout)
	// The group is managed by the client's own goroutines; polling only
	// reports its errors (a paused topic returns no record).
	polling, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	var failed error
	go func() {
		select {
		case failed = <-e.done:
			stopPolling()
		case <-polling.Done():
		}
	}()
	for polling.Err() == nil {
		for _, f := range client.PollFetches(polling).Errors() {
			if !errors.Is(f.Err, context.Canceled) {
				opts.Log.Warn("the connector's group reports an error; membership goes on", "group", opts.Group, "err", f.Err)
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return failed
}

// election runs lead while the member holds the checkpoint topic's partition.
type election struct {
	topic string
	lead  func(context.Context) error
	opts  LeadOptions
	done  chan error // lead's end while it still led: Lead's end

	mu      sync.Mutex
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the running lead returned
}

func (e *election) holds(partitions map[string][]int32) bool {
	return len(partitions[e.topic]) > 0
}

func (e *election) assigned(_ context.Context, _ *kgo.Client, partitions map[string][]int32) {
	if !e.holds(partitions) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil {
		return // leading already
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	e.cancel, e.stopped = cancel, stopped
	e.opts.Log.Info("leading: this instance runs the connector", "group", e.opts.Group)
	if e.opts.OnChange != nil {
		e.opts.OnChange(true)
	}
	go func() {
		defer close(stopped)
		err := e.lead(ctx)
		if ctx.Err() == nil { // not asked to stop: lead ended by itself
			e.done <- err
		}
	}()
}

func (e *election) revoked(_ context.Context, _ *kgo.Client, partitions map[string][]int32) {
	if e.holds(partitions) {
		e.stop()
	}
}

// stop ends the running lead, if any, and waits for it.
func (e *election) stop() {
	e.mu.Lock()
	cancel, stopped := e.cancel, e.stopped
	e.cancel, e.stopped = nil, nil
	e.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-stopped
	e.opts.Log.Info("standing by: this instance no longer leads", "group", e.opts.Group)
	if e.opts.OnChange != nil {
		e.opts.OnChange(false)
	}
}
