package cdc

import (
	"errors"
	"fmt"
	"testing"
)

func TestProblemReadsAsOneSentence(t *testing.T) {
	cause := errors.New("permission denied")
	p := &Problem{Where: "table public.orders", What: "cannot read it", Fix: "GRANT SELECT ON orders TO cdc", Err: cause}
	if got, want := p.Error(), "table public.orders: cannot read it: permission denied; GRANT SELECT ON orders TO cdc"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := p.Message(), "table public.orders: cannot read it: permission denied"; got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}
	if !errors.Is(p, cause) {
		t.Error("the cause is not unwrapped")
	}
	if got := (&Problem{What: "wal_level is replica"}).Error(); got != "wal_level is replica" {
		t.Errorf("a problem without where or fix: %q", got)
	}
}

func TestProblemsAreFoundThroughWrapsAndJoins(t *testing.T) {
	a, b := &Problem{What: "a"}, &Problem{What: "b", Err: &Problem{What: "a cause, not listed"}}
	err := fmt.Errorf("the database is not ready:\n%w", errors.Join(a, errors.New("plain"), Transient(fmt.Errorf("x: %w", b))))
	got := Problems(err)
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Problems = %v, want [a b]", got)
	}
	if Problems(errors.New("plain")) != nil || Problems(nil) != nil {
		t.Error("problems found where there are none")
	}
}
