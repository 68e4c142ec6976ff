package pipeline

import (
	"errors"
	"testing"

	"github.com/cdc-dev/cdc/sink"
)

// A run keeps its first failure, unless a later one says another process took
// the connector over: that one is why it must not restart.
func TestFencingReplacesTheFailureARunStoppedOn(t *testing.T) {
	lost := errors.New("binlog stream lost")
	fenced := &sink.FencedError{TransactionalID: "cdc-shop", Err: errors.New("producer fenced")}
	r := &run{stop: func() {}}
	r.fail(lost)
	r.fail(errors.New("a later failure"))
	if r.err() != lost {
		t.Fatalf("after two failures: %v, want the first", r.err())
	}
	r.fail(fenced)
	r.fail(errors.New("a failure after the fencing"))
	if r.err() != fenced {
		t.Fatalf("after the fencing: %v, want it", r.err())
	}
}
