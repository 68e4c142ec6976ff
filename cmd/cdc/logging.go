package main

import (
	"context"
	"io"
	"log/slog"
	"strings"

	"github.com/cdc-dev/cdc"
)

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(problemHandler{h}).With("connector", cfg.Name)
}

// problemHandler logs the fields of the cdc.Problems in an error attribute as
// attributes of their own beside it — err_where, err_what, err_fix for "err"
// — so that a log pipeline can pick the fix out without parsing prose. The
// error's text stays as it was.
type problemHandler struct{ slog.Handler }

func (h problemHandler) Handle(ctx context.Context, r slog.Record) error {
	var extra []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		err, ok := a.Value.Any().(error)
		if !ok || a.Value.Kind() != slog.KindAny {
			return true
		}
		if problems := cdc.Problems(err); len(problems) > 0 {
			extra = append(extra, problemAttrs(a.Key, problems)...)
		}
		return true
	})
	if len(extra) > 0 {
		r = r.Clone()
		r.AddAttrs(extra...)
	}
	return h.Handler.Handle(ctx, r)
}

// problemAttrs are the fields of problems, one line per problem where there
// are several.
func problemAttrs(key string, problems []*cdc.Problem) []slog.Attr {
	field := func(name string, of func(*cdc.Problem) string) []slog.Attr {
		var values []string
		for _, p := range problems {
			if v := of(p); v != "" {
				values = append(values, v)
			}
		}
		if len(values) == 0 {
			return nil
		}
		return []slog.Attr{slog.String(key+"_"+name, strings.Join(values, "\n"))}
	}
	var out []slog.Attr
	out = append(out, field("where", func(p *cdc.Problem) string { return p.Where })...)
	out = append(out, field("what", func(p *cdc.Problem) string { return p.What })...)
	return append(out, field("fix", func(p *cdc.Problem) string { return p.Fix })...)
}

func (h problemHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return problemHandler{h.Handler.WithAttrs(attrs)}
}

func (h problemHandler) WithGroup(name string) slog.Handler {
	return problemHandler{h.Handler.WithGroup(name)}
}
