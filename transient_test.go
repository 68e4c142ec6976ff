package cdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
)

func TestTransientErrorsAreTheNetworksAndTheMarkedOnes(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &netErrno{syscall.ECONNREFUSED}}
	cases := []struct {
		err  error
		want bool
	}{
		{Transient(errors.New("binlog stream lost")), true},
		{fmt.Errorf("connect to PostgreSQL: %w", refused), true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{fmt.Errorf("replication connection lost: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("status: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("wrapped twice: %w", fmt.Errorf("and marked: %w", Transient(errors.New("x")))), true},
		{errors.New(`entity "customer", field "balance": value NaN`), false},
		{fmt.Errorf("stopping: %w", context.Canceled), false},
		{nil, false},
	}
	for _, c := range cases {
		if got := IsTransient(c.err); got != c.want {
			t.Errorf("IsTransient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if Transient(nil) != nil {
		t.Error("Transient(nil) is not nil")
	}
}

// netErrno is an errno as the net package wraps it (os.SyscallError's shape).
type netErrno struct{ errno syscall.Errno }

func (e *netErrno) Error() string { return e.errno.Error() }
func (e *netErrno) Unwrap() error { return e.errno }
