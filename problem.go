package cdc

import (
	"errors"
	"strings"
)

// Problem is an error that tells its reader what to do: what is wrong, where,
// and the fix, each a field of its own, so that a log in JSON can carry them as
// attributes and cdc validate can print the fix on a line of its own. Its text
// reads as one sentence: "where: what: cause; fix".
type Problem struct {
	// Where is what the problem is about: a file and line, a table, an entity.
	// It may be empty when the problem is the whole connector's.
	Where string
	// What says what is wrong, in the words of the user's configuration or
	// database, not of the code.
	What string
	// Fix says what to do: a statement to run, a key to set. It may be empty
	// when there is nothing to do but wait or report a bug.
	Fix string
	// Err is the cause, if any.
	Err error
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Message())
	if p.Fix != "" {
		b.WriteString("; ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// Message is the problem's text without its fix.
func (p *Problem) Message() string {
	var b strings.Builder
	if p.Where != "" {
		b.WriteString(p.Where)
		b.WriteString(": ")
	}
	b.WriteString(p.What)
	if p.Err != nil {
		b.WriteString(": ")
		b.WriteString(p.Err.Error())
	}
	return b.String()
}

func (p *Problem) Unwrap() error { return p.Err }

// Problems lists the problems in err's tree (errors wrapped or joined), in the
// order their text shows them; a problem's own cause is not searched.
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Problem:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			walk(errors.Unwrap(err))
		}
	}
	walk(err)
	return out
}
