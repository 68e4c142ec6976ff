package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cdc-dev/cdc"
	"github.com/cdc-dev/cdc/aggregate"
	"github.com/cdc-dev/cdc/internal/memory"
	"github.com/cdc-dev/cdc/mapping"
	"github.com/cdc-dev/cdc/metrics"
	"github.com/cdc-dev/cdc/sink"
)

// verifyCommand reads each entity topic to its end, materializes it (the last
// value per key; a tombstone removes the key), and compares it with the
// mapping applied to the table's current rows. It writes nothing anywhere but
// to a temporary directory of its own, and fails if any entity differs.
func verifyCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var only entityNames
	examples := 5
	cfg, err := loadFromFlags("verify", args, stderr, func(fs *flag.FlagSet) {
		fs.Var(&only, "entity", "verify only this entity (repeat for several; default: every entity)")
		fs.IntVar(&examples, "examples", examples, "how many differing keys to show per entity and kind of difference")
	})
	if err != nil {
		return err
	}
	if err := only.keep(cfg); err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	c, err := openConnector(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	reader, ok := c.src.(cdc.TableReader)
	if !ok {
		return fmt.Errorf("source kind %s cannot read its tables for a comparison", cfg.Source.Kind)
	}
	if err := c.checkMappings(ctx); err != nil {
		return err
	}
	if err := c.dialBrokers(ctx); err != nil {
		return err
	}
	k := c.kafka
	var entities, outboxes []*mapping.Entity
	for _, e := range c.entities {
		if e.Outbox == nil {
			entities = append(entities, e)
		} else {
			outboxes = append(outboxes, e)
		}
	}
	spill, err := os.MkdirTemp("", "cdc-verify-")
	if err != nil {
		return fmt.Errorf("verify needs a temporary directory for the keys it compares: %w", err)
	}
	defer os.RemoveAll(spill)

	checks := map[*mapping.Entity]*entityCheck{}
	framing := map[string]mapping.Framing{}
	for _, e := range entities {
		check, err := readEntityTopic(ctx, k, cfg, e, filepath.Join(spill, e.Name))
		if err != nil {
			return fmt.Errorf("entity %s: %w", e.Name, err)
		}
		defer check.comparison.close()
		checks[e], framing[e.Name] = check, check.framing
	}
	mapper := mapping.NewMapper(entities, mapping.Options{Framing: framing})
	// The topics are read first: a row that changes after its topic was read
	// shows as a difference, so verify a connector whose source is quiet and
	// whose checkpoint has caught up.
	if err := projectTables(ctx, reader, mapper, checks); err != nil {
		return err
	}
	if err := projectAggregates(ctx, c.src, entities, checks); err != nil {
		return err
	}
	differ := 0
	var total int64
	for _, e := range entities {
		n, err := checks[e].report(stdout, examples)
		if err != nil {
			return fmt.Errorf("entity %s: %w", e.Name, err)
		}
		if n > 0 {
			differ++
			total += n
		}
	}
	for _, e := range outboxes {
		bad, err := checkEvents(ctx, k, cfg, e, stdout, examples)
		if err != nil {
			return fmt.Errorf("entity %s: %w", e.Name, err)
		}
		if bad > 0 {
			differ++
		}
	}
	if differ > 0 {
		return fmt.Errorf("verify: %d of %d entities differ from their tables (%d keys) or hold events their schema does not describe; if the connector was not caught up or the tables changed meanwhile, run verify again once it is", differ, len(c.entities), total)
	}
	return nil
}

// checkEvents reads the topic of an outbox route, which holds events, not
// the state of a table: there is nothing to compare it with. It checks
// instead that every record is an event of the route, a key and a value that
// decode, to their last byte, with the route's schemas, and returns how many
// are not.
func checkEvents(ctx context.Context, k *sink.Kafka, cfg *Config, e *mapping.Entity, w io.Writer, examples int) (int64, error) {
	if missing, err := k.MissingTopics([]string{e.Topic}); err != nil {
		return 0, err
	} else if len(missing) > 0 {
		return 0, fmt.Errorf("topic %s does not exist: cdc run creates it when it starts", e.Topic)
	}
	keySchema, _ := e.KeySchema() // checked by mappingEntities
	keys, err := newRecordDecoder(k, cfg, keySchema)
	if err != nil {
		return 0, err
	}
	values, err := newRecordDecoder(k, cfg, e.Schema)
	if err != nil {
		return 0, err
	}
	var events, bad int64
	var shown []string
	err = k.ReadTopic(ctx, e.Topic, false, func(m sink.Message) error {
		events++
		errKey, errValue := keys.check(m.Key), values.check(m.Value)
		if m.Value == nil {
			errValue = fmt.Errorf("a tombstone: an outbox route publishes events only")
		}
		if err := errors.Join(errKey, errValue); err != nil {
			bad++
			if len(shown) < examples {
				shown = append(shown, fmt.Sprintf("  offset %d of partition %d: %v", m.Offset, m.Partition, err))
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "entity %s: topic %s has %d events of outbox table %s, which holds events, not state: checked that each decodes with %s", e.Name, e.Topic, events, e.Table, e.SchemaFile)
	if bad == 0 {
		fmt.Fprintln(w, ": all do")
	} else {
		fmt.Fprintf(w, ": %d do not\n%s\n", bad, strings.Join(shown, "\n"))
	}
	return bad, nil
}

// entityCheck is the comparison of one entity, with what to show of it.
type entityCheck struct {
	entity *mapping.Entity
	// framing is what the topic's records are framed with: the mapping
	// frames the table's rows the same way.
	framing      mapping.Framing
	comparison   *comparison
	keys, values *recordDecoder
	// Rows of the table outside the entity (its where or tombstone_when), and
	// rows that cannot be mapped (with the first reasons).
	outside, unmappable int64
	reasons             []string
}

func readEntityTopic(ctx context.Context, k *sink.Kafka, cfg *Config, e *mapping.Entity, dir string) (*entityCheck, error) {
	if missing, err := k.CheckTopics([]string{e.Topic}); err != nil {
		return nil, err
	} else if len(missing) > 0 {
		return nil, fmt.Errorf("topic %s does not exist: cdc run creates it when it starts", e.Topic)
	}
	keySchema, _ := e.KeySchema() // checked by mappingEntities
	key, value, err := k.RegisteredFraming(ctx, e.Topic, keySchema, e.Schema)
	if err != nil {
		return nil, err
	}
	records, err := k.TopicRecords(e.Topic)
	if err != nil {
		return nil, err
	}
	c := &entityCheck{entity: e, framing: mapping.Framing{Key: key, Value: value}}
	if c.keys, err = newRecordDecoder(k, cfg, keySchema); err != nil {
		return nil, err
	}
	if c.values, err = newRecordDecoder(k, cfg, e.Schema); err != nil {
		return nil, err
	}
	if c.comparison, err = newComparison(dir, records); err != nil {
		return nil, fmt.Errorf("temporary files for the comparison: %w", err)
	}
	err = k.ReadTopic(ctx, e.Topic, false, func(m sink.Message) error {
		return c.comparison.add(sideTopic, m.Key, m.Value)
	})
	if err != nil {
		c.comparison.close()
		return nil, err
	}
	return c, nil
}

// projectAggregates computes every root of each aggregate entity, with the
// queries cdc run recomputes them with, and adds their records to the
// comparisons.
func projectAggregates(ctx context.Context, src cdc.Source, entities []*mapping.Entity, checks map[*mapping.Entity]*entityCheck) error {
	for _, e := range entities {
		if !e.IsAggregate() {
			continue
		}
		view, ok := src.(cdc.ViewReader)
		if !ok {
			return fmt.Errorf("entity %s: this source cannot read an aggregate's tables back", e.Name)
		}
		tables, err := src.Describe(ctx, e.Tables())
		if err != nil {
			return err
		}
		check := checks[e]
		a, err := aggregate.New(e, check.framing, tables, 0, metrics.New().Aggregate(e.Name))
		if err != nil {
			return err
		}
		err = view.ReadView(ctx, cdc.Fence{}, func(v cdc.View) error {
			return a.All(ctx, v, func(records []mapping.Record) error {
				for _, r := range records {
					if r.Value == nil {
						check.outside++ // the root is outside the entity's where or tombstone_when
						continue
					}
					if err := check.comparison.add(sideTable, r.Key, r.Value); err != nil {
						return fmt.Errorf("temporary files for the comparison: %w", err)
					}
				}
				return nil
			})
		})
		if err != nil {
			return fmt.Errorf("entity %s: %w", e.Name, err)
		}
	}
	return nil
}

// projectTables reads the tables in one consistent view and adds each row's
// records, as cdc run would produce them for a snapshot, to the comparisons.
func projectTables(ctx context.Context, reader cdc.TableReader, mapper *mapping.Mapper, checks map[*mapping.Entity]*entityCheck) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan cdc.Batch, 4)
	read := make(chan error, 1)
	go func() {
		read <- reader.ReadTables(ctx, batches)
		close(batches)
	}()
	var failed error
	var records []mapping.Record
	var arena memory.Arena // the records' keys and values
	for b := range batches {
		for i := range b.Changes {
			if failed != nil {
				break // drain so the reader can return
			}
			if failed = projectRow(mapper, &b.Changes[i], checks, &records, &arena); failed != nil {
				cancel()
			}
		}
		// The comparison holds copies of the records.
		arena.Release(arena.Mark())
		b.Release()
	}
	if err := <-read; err != nil && failed == nil {
		return err
	}
	return failed
}

func projectRow(mapper *mapping.Mapper, ch *cdc.Change, checks map[*mapping.Entity]*entityCheck, records *[]mapping.Record, arena *memory.Arena) error {
	plans, err := mapper.Compile(ch.Table)
	if err != nil {
		return err
	}
	for _, p := range plans {
		c := checks[p.Entity()]
		out, err := p.Map(ch, (*records)[:0], arena)
		*records = out
		if err != nil {
			c.unmappable++
			if len(c.reasons) < 3 {
				c.reasons = append(c.reasons, err.Error())
			}
			continue
		}
		if len(out) == 0 {
			c.outside++
			continue
		}
		for _, r := range out {
			if r.DeadLetter != nil {
				c.unmappable++
				if len(c.reasons) < 3 {
					c.reasons = append(c.reasons, r.DeadLetter.Reason)
				}
				continue
			}
			if err := c.comparison.add(sideTable, r.Key, r.Value); err != nil {
				return fmt.Errorf("temporary files for the comparison: %w", err)
			}
		}
	}
	return nil
}

// report prints the entity's result and returns how many keys differ.
func (c *entityCheck) report(w io.Writer, examples int) (int64, error) {
	var shown [differences]int
	var lines []string
	result, err := c.comparison.compare(func(d difference, key, topicValue, tableValue []byte) {
		if shown[d] >= examples {
			return
		}
		shown[d]++
		line := fmt.Sprintf("  %s key %s", d, c.render(c.keys, key))
		if topicValue != nil {
			line += "\n    topic: " + c.render(c.values, topicValue)
		}
		if tableValue != nil {
			line += "\n    table: " + c.render(c.values, tableValue)
		}
		lines = append(lines, line)
	})
	if err != nil {
		return 0, err
	}
	e := c.entity
	fmt.Fprintf(w, "entity %s: topic %s has %d keys; table %s has %d rows in the entity", e.Name, e.Topic, result.TopicKeys, e.Table, result.TableRows)
	if c.outside > 0 {
		fmt.Fprintf(w, " (%d outside it)", c.outside)
	}
	n := result.differences()
	if n == 0 {
		fmt.Fprintln(w, ": identical")
	} else {
		var parts []string
		for d, count := range result.Found {
			if count > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", count, difference(d)))
			}
		}
		fmt.Fprintf(w, ": %s\n%s\n", strings.Join(parts, ", "), strings.Join(lines, "\n"))
	}
	if c.unmappable > 0 {
		fmt.Fprintf(w, "  %d rows cannot be mapped (cdc run stops or sends them to the dead-letter topic), e.g.:\n    %s\n",
			c.unmappable, strings.Join(c.reasons, "\n    "))
	}
	return n, nil
}

// render shows a framed record as JSON, or as bytes if it does not decode.
func (c *entityCheck) render(d *recordDecoder, data []byte) string {
	j, err := d.decode(data)
	if err != nil {
		return fmt.Sprintf("%x… (%v)", data[:min(len(data), 32)], err)
	}
	return string(j)
}
