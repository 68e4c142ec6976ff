package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cdc-dev/cdc"
)

// Start-up steps talk to servers that may accept a connection and then say
// nothing (a stalled network path, a broker or registry hung): each is bounded,
// logged when it takes long, and given up at once on SIGTERM.
var (
	// stepSlow is when a step still waiting is logged.
	stepSlow = 10 * time.Second
	// stepLimit bounds a step: the database, brokers and registry answer
	// well within it when they work at all.
	stepLimit = time.Minute
)

// await runs one start-up step and waits for it until it ends, ctx ends, or
// stepLimit passes. A step given up goes on in the background: what it
// returns then is handed to discard (a connection to close). Having to give
// up is transient: a restart after a failure tries again, though a first
// start stops (the daemon's supervisor decides).
func await[T any](ctx context.Context, log *slog.Logger, what string, step func(context.Context) (T, error), discard func(T)) (T, error) {
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := step(ctx)
		done <- result{v, err}
	}()
	abandon := func() {
		cancel()
		go func() {
			if r := <-done; r.err == nil && discard != nil {
				discard(r.v)
			}
		}()
	}
	slow := time.NewTimer(stepSlow)
	defer slow.Stop()
	limit := time.NewTimer(stepLimit)
	defer limit.Stop()
	for {
		select {
		case r := <-done:
			cancel()
			return r.v, r.err
		case <-slow.C:
			log.Warn("still waiting to "+what+": the server accepts connections but does not answer", "waited", stepSlow, "gives_up_after", stepLimit)
		case <-limit.C:
			abandon()
			var zero T
			return zero, cdc.Transient(fmt.Errorf("could not %s: no answer within %s; check that the servers are up and reachable (a firewall that drops packets, a server hung)", what, stepLimit))
		case <-ctx.Done():
			abandon()
			var zero T
			return zero, ctx.Err()
		}
	}
}

// awaitErr is await for a step that returns only an error.
func awaitErr(ctx context.Context, log *slog.Logger, what string, step func(context.Context) error) error {
	_, err := await(ctx, log, what, func(ctx context.Context) (struct{}, error) { return struct{}{}, step(ctx) }, nil)
	return err
}
