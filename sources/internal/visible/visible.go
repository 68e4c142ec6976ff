// Package visible waits until a database shows what its log already holds: a
// transaction is logged before other sessions can see it, so a read made
// for changes just read from the log may not see them yet.
package visible

import (
	"context"
	"log/slog"
	"time"
)

// Await calls try until it reports that the read it made saw what it had
// to (or fails), backing off from 1 ms to 100 ms between attempts; every 30
// s of waiting it logs waiting with attrs and the seconds waited.
func Await(ctx context.Context, log *slog.Logger, waiting string, attrs []any, try func() (bool, error)) error {
	started, warned := time.Now(), time.Now()
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		seen, err := try()
		if err != nil || seen {
			return err
		}
		if time.Since(warned) > 30*time.Second {
			warned = time.Now()
			log.Warn(waiting, append(attrs, "waiting_seconds", int(time.Since(started).Seconds()))...)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
