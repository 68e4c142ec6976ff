package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc"
)

// A start-up step that never answers is logged, given up after its bound (a
// transient failure, which a restart retries), and given up at once when the
// process is asked to stop; what it opens late is closed.
func TestAStartupStepIsBoundedLoggedAndStoppable(t *testing.T) {
	stepSlow, stepLimit = 20*time.Millisecond, 100*time.Millisecond
	defer func() { stepSlow, stepLimit = 10*time.Second, time.Minute }()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	release := make(chan struct{})
	discarded := make(chan int, 1)
	hung := func(context.Context) (int, error) { <-release; return 7, nil }

	_, err := await(context.Background(), log, "reach the Kafka brokers", hung, func(v int) { discarded <- v })
	if !cdc.IsTransient(err) || !strings.Contains(err.Error(), "could not reach the Kafka brokers: no answer within 100ms") {
		t.Errorf("got %v, want a transient failure that names the step and its bound", err)
	}
	if !strings.Contains(logs.String(), "still waiting to reach the Kafka brokers") {
		t.Errorf("nothing logged while waiting:\n%s", logs.String())
	}
	close(release)
	if v := <-discarded; v != 7 {
		t.Errorf("discarded %d", v)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	started := time.Now()
	_, err = await(ctx, log, "connect to the database", func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }, nil)
	if !errors.Is(err, context.Canceled) || time.Since(started) > 50*time.Millisecond {
		t.Errorf("a stop during a step: %v after %s", err, time.Since(started))
	}
}
