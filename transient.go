package cdc

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// TransientError marks a failure that may pass by itself: a connection lost,
// a server restarting, brokers without a leader. The daemon retries the whole
// connector from its last stored checkpoint after a backoff; any other error
// stops it. Sources and the sink wrap their drivers' transient errors in it,
// since only they can read those drivers' error codes.
type TransientError struct {
	Err error
	// Restarting says a database answered that it is shutting down or
	// starting up: it was reached, and the connection details are right.
	Restarting bool
}

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Transient wraps err as transient (nil stays nil).
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

// Restarting wraps err, a database's answer that it is shutting down or
// starting up, as transient.
func Restarting(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err, Restarting: true}
}

// IsRestarting reports whether err is a database's answer that it is
// shutting down or starting up (see Restarting).
func IsRestarting(err error) bool {
	var marked *TransientError
	return errors.As(err, &marked) && marked.Restarting
}

// IsTransient reports whether err may pass by itself: it is marked transient,
// or it is a failure of the network path (refused, reset, timed out, cut
// short) rather than an answer from a server. A context's deadline counts as
// a timeout; a canceled context does not (it is a stop).
func IsTransient(err error) bool {
	var marked *TransientError
	if errors.As(err, &marked) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded)
}
