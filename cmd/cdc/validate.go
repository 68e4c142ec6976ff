package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/sink"
)

// validateCommand checks everything cdc run would check before producing, without
// creating anything, and lists every problem. It exits 0 only when all hold, so it
// can gate a deployment.
func validateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadFromFlags("validate", args, stderr, nil)
	if err != nil {
		return err
	}
	entities, err := cfg.mappingEntities()
	if err != nil {
		return problems(stderr, "configuration", err)
	}
	fmt.Fprintf(stdout, "ok: configuration %s (%d entities)\n", cfg.path, len(entities))
	log := newLogger(cfg, io.Discard)
	var failed []string

	mapper := mapping.NewMapper(entities)
	if src, err := openSource(ctx, cfg, sortedTables(mapper), log); err != nil {
		failed = append(failed, "database")
		_ = problems(stderr, "database", err)
	} else {
		err := errors.Join(src.Check(ctx), compileAll(ctx, src, mapper))
		src.Close()
		if err != nil {
			failed = append(failed, "database")
			_ = problems(stderr, "database and mappings", err)
		} else {
			fmt.Fprintf(stdout, "ok: database prerequisites and mappings of %d tables\n", len(mapper.Tables()))
		}
	}

	if k, err := sink.Dial(kafkaConfig(cfg), log); err != nil {
		failed = append(failed, "kafka")
		_ = problems(stderr, "kafka", err)
	} else {
		var topics []string
		for _, e := range entities {
			topics = append(topics, e.Topic)
		}
		missing, err := k.CheckTopics(topics)
		k.Close()
		if err != nil {
			failed = append(failed, "kafka")
			_ = problems(stderr, "kafka topics", err)
		} else {
			fmt.Fprintf(stdout, "ok: kafka topics")
			if len(missing) > 0 {
				fmt.Fprintf(stdout, " (cdc run will create %s)", strings.Join(missing, ", "))
			}
			fmt.Fprintln(stdout)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("validation failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// problems prints each problem of a joined error on its own line.
func problems(w io.Writer, what string, err error) error {
	fmt.Fprintf(w, "problems with the %s:\n", what)
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "  - %s\n", line)
	}
	return fmt.Errorf("invalid %s", what)
}
