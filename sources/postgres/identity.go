package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc"
)

// mappedRelation tells which mapped table a relation message stands for. The
// stream knows mapped tables by their OIDs as described at start: a rename
// keeps the OID, and a table dropped and created again under the same name
// gets a new one, whose rows the topic does not have.
//
// A mapped table's relation arriving under another name was renamed: before
// cdc started (the change is older than the rename, and the table has the
// configured name now: it is delivered) or since (its changes now arrive under
// a name that is not mapped: cdc stops at the first one).
func (s *Source) mappedRelation(ctx context.Context, oid uint32, name cdc.TableName, at Position) (cdc.TableName, bool, error) {
	for mapped, rel := range s.relations {
		if rel.oid != oid {
			continue
		}
		if mapped == name {
			return mapped, true, nil
		}
		now, err := s.relationName(ctx, s.conn, oid)
		if err != nil {
			return mapped, false, err
		}
		if now == mapped {
			return mapped, true, nil // a change from before it was renamed to its configured name
		}
		return mapped, false, fmt.Errorf("table %s was renamed to %s: its changes from %s on arrive under the new name, and cdc stopped at the first one rather than drop them. Map the table by its new name (entities[].table: %s) and start cdc again, or rename it back",
			mapped, nameOrGone(now), at, nameOrGone(now))
	}
	if _, ok := s.tables[name]; ok {
		return name, false, fmt.Errorf("the change at %s is of a table named %s that is not the one cdc was started on (relation %d, not %d): %s was dropped, or renamed, and a table created under its name. A DROP logs no deletes, so the topics still hold rows the table no longer has. %s",
			at, name, oid, s.relations[name].oid, name, s.startOver())
	}
	return name, false, nil
}

// relationName is the table's name now, the zero name if it no longer exists.
func (s *Source) relationName(ctx context.Context, conn *pgx.Conn, oid uint32) (cdc.TableName, error) {
	var name cdc.TableName
	err := conn.QueryRow(ctx, `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = $1`, oid).Scan(&name.Schema, &name.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return cdc.TableName{}, nil
	}
	if err != nil {
		return name, fmt.Errorf("read the name of relation %d: %w", oid, err)
	}
	return name, nil
}

func nameOrGone(name cdc.TableName) string {
	if name.Name == "" {
		return "(a name it no longer has: it was dropped since)"
	}
	return name.String()
}

var _ cdc.Rechecker = (*Source)(nil)

// Recheck implements cdc.Rechecker on the status connection: every mapped
// table must still be the relation cdc started on, under its name, with a
// REPLICA IDENTITY cdc can serve; and a partitioned one must have lost no partition.
// A partition attached since, holding rows that predate it, has its table's
// entities backfilled (see partitionsNow).
func (s *Source) Recheck(ctx context.Context) ([]*cdc.Table, error) {
	var tables []*cdc.Table
	var problems []error
	err := s.onStatusConn(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		for _, name := range s.cfg.Tables {
			rel := s.relations[name]
			now, err := s.relationName(ctx, conn, rel.oid)
			if err != nil {
				return err
			}
			switch {
			case now.Name == "":
				problems = append(problems, fmt.Errorf("table %s was dropped: a DROP logs no deletes, so its topics still hold every row it had. Remove its entities from the configuration, or once the table exists again: %s", name, s.startOver()))
				continue
			case now != name:
				problems = append(problems, fmt.Errorf("table %s was renamed to %s: its changes now arrive under a name cdc does not map. Map the table by its new name (entities[].table: %s) and start cdc again, or rename it back", name, now, now))
				continue
			}
			t, described, err := s.describe(ctx, conn, name)
			if err != nil {
				return err
			}
			if err := identityProblem("table "+name.String(), tableList([]cdc.TableName{name}), described.replicaIdentity, t); err != nil {
				problems = append(problems, err)
			}
			if described.partitioned {
				if err := s.partitionsNow(ctx, conn, name, described.oid); err != nil {
					problems = append(problems, err)
				}
			}
			tables = append(tables, t)
		}
		return nil
	})
	if err != nil {
		return nil, classify(err)
	}
	return tables, errors.Join(problems...)
}

// partitionsNow compares the leaf partitions of a mapped partitioned table
// with those cdc knows. Neither attaching nor detaching a partition logs its
// rows. A partition gone (detached or dropped) took its rows out of the table
// without deletes, and the topic still holds them: that is an error, and the
// partition stays known, so that a restart refuses too (see Catalog). A new
// partition is known from now on; if it may hold rows from before it was
// attached (see attachedRows), the table's entities are backfilled, through
// a signal in the WAL that the stream meets in order.
func (s *Source) partitionsNow(ctx context.Context, conn *pgx.Conn, name cdc.TableName, root uint32) error {
	leaves, err := s.leafPartitions(ctx, conn, root)
	if err != nil {
		return err
	}
	s.catalogMu.Lock()
	known := maps.Clone(s.partitions[name])
	s.catalogMu.Unlock()
	now := map[uint32]cdc.TableName{}
	for _, l := range leaves {
		now[l.oid] = l.name
	}
	var gone []string
	for oid, leaf := range known {
		if _, ok := now[oid]; !ok {
			gone = append(gone, leaf.String())
		}
	}
	if len(gone) > 0 {
		slices.Sort(gone)
		return fmt.Errorf("partition %s of %s was detached or dropped: its rows left %s without a delete in the log, so the topics of %s still hold them. %s",
			strings.Join(gone, ", "), name, name, name, s.startOver())
	}
	for oid, leaf := range now {
		if _, ok := known[oid]; ok {
			continue
		}
		older, err := attachedRows(ctx, conn, oid, root)
		if err != nil {
			return err
		}
		if older {
			fill := cdc.Backfill{Entities: s.cfg.Entities[name], Tables: []cdc.TableName{name}}
			if err := s.checkBackfill(fill); err != nil {
				return fmt.Errorf("partition %s was attached to %s with rows its log never showed, and %w", leaf, name, err)
			}
			if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)`, SignalMessagePrefix, s.cfg.Slot+":"+fill.String()); err != nil {
				return fmt.Errorf("ask for the backfill of %s after partition %s was attached: %w", name, leaf, err)
			}
			s.log.Warn("a partition was attached with rows its log never showed: backfilling its table's entities", "table", name.String(), "partition", leaf.String())
		} else {
			s.log.Info("partition attached; its rows are in the log", "table", name.String(), "partition", leaf.String())
		}
		s.catalogMu.Lock()
		s.partitions[name][oid] = leaf
		s.catalogMu.Unlock()
	}
	return nil
}

// attachedRows reports whether a partition may hold rows that came in when it
// was attached, which no change in the log shows. A partition created
// attached (CREATE TABLE ... PARTITION OF) holds such rows only if its rows
// include some as old as the attach, by their inserting transactions; a table
// attached after it was created, or a partition of a partition, counts as
// having them if it has any row. Each answer is exact or errs toward a
// backfill, which sends again what the topic has.
func attachedRows(ctx context.Context, conn *pgx.Conn, leaf, root uint32) (bool, error) {
	var direct bool
	var attachAge, createAge int64
	// The table's dependency on its schema is written when it is created
	// and, unlike its pg_class row (which ALTER TABLE rewrites), not after.
	err := conn.QueryRow(ctx, `SELECT i.inhparent = $2, age(i.xmin), age(d.xmin) FROM pg_catalog.pg_inherits i
		JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = i.inhrelid AND d.objsubid = 0
			AND d.refclassid = 'pg_catalog.pg_namespace'::regclass
		WHERE i.inhrelid = $1`, leaf, root).Scan(&direct, &attachAge, &createAge)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // detached again since it was listed
	}
	if err != nil {
		return false, fmt.Errorf("read when partition %d was attached: %w", leaf, err)
	}
	var ident string
	if err := conn.QueryRow(ctx, `SELECT $1::regclass::text`, leaf).Scan(&ident); err != nil {
		return false, fmt.Errorf("name partition %d: %w", leaf, err)
	}
	query := "SELECT EXISTS (SELECT 1 FROM ONLY " + ident + ")"
	if direct && attachAge == createAge {
		query = "SELECT EXISTS (SELECT 1 FROM ONLY " + ident + " WHERE age(xmin) >= " + strconv.FormatInt(attachAge, 10) + ")"
	}
	var any bool
	if err := conn.QueryRow(ctx, query).Scan(&any); err != nil {
		return false, fmt.Errorf("look for rows older than the attach of partition %s: %w", ident, err)
	}
	return any, nil
}

var _ cdc.CatalogKeeper = (*Source)(nil)

// storedTable is a mapped table's identity in the checkpoint's catalog.
type storedTable struct {
	OID        uint32            `json:"oid"`
	Partitions map[uint32]string `json:"partitions,omitempty"`
}

// Catalog implements cdc.CatalogKeeper: each mapped table's OID and the
// partitions cdc knows, so that a restart finds what changed while cdc was
// stopped.
func (s *Source) Catalog() string {
	s.catalogMu.Lock()
	defer s.catalogMu.Unlock()
	tables := map[string]storedTable{}
	for name, rel := range s.relations {
		st := storedTable{OID: rel.oid}
		for oid, leaf := range s.partitions[name] {
			if st.Partitions == nil {
				st.Partitions = map[uint32]string{}
			}
			st.Partitions[oid] = leaf.String()
		}
		tables[name.String()] = st
	}
	text, _ := json.Marshal(tables) // map keys sorted: a stable text
	return string(text)
}

// ResumeCatalog implements cdc.CatalogKeeper.
func (s *Source) ResumeCatalog(stored string) { s.storedCatalog = stored }

// knowTables reads the identity of the mapped tables at the start of a run
// and compares it with the catalog stored with the checkpoint it resumes
// from: a table created anew under its name, or a partition gone, while cdc
// was stopped, changed rows that no log shows; a partition attached meanwhile
// is handled as Recheck handles one.
func (s *Source) knowTables(ctx context.Context, resuming bool) error {
	stored := map[string]storedTable{}
	if resuming && s.storedCatalog != "" {
		if err := json.Unmarshal([]byte(s.storedCatalog), &stored); err != nil {
			return fmt.Errorf("the checkpoint's catalog is unreadable (%v). %s", err, s.startOver())
		}
	}
	s.catalogMu.Lock()
	s.partitions = map[cdc.TableName]map[uint32]cdc.TableName{}
	s.catalogMu.Unlock()
	var problems []error
	for _, name := range s.cfg.Tables {
		rel := s.relations[name]
		before, known := stored[name.String()]
		if known && before.OID != rel.oid {
			problems = append(problems, fmt.Errorf("table %s is not the one the checkpoint was stored for (relation %d, now %d): it was dropped, or renamed, and a table created under its name while cdc was stopped. A DROP logs no deletes, so the topics of %s may hold rows the table no longer has. %s",
				name, before.OID, rel.oid, name, s.startOver()))
			continue
		}
		if !rel.partitioned {
			continue
		}
		leaves, err := s.leafPartitions(ctx, s.conn, rel.oid)
		if err != nil {
			return err
		}
		partitions := map[uint32]cdc.TableName{}
		for _, l := range leaves {
			partitions[l.oid] = l.name
		}
		if known {
			partitions = map[uint32]cdc.TableName{}
			for oid, leaf := range before.Partitions {
				partitions[oid], _ = cdc.ParseTableName(leaf)
			}
		}
		s.catalogMu.Lock()
		s.partitions[name] = partitions
		s.catalogMu.Unlock()
		if known {
			if err := s.partitionsNow(ctx, s.conn, name, rel.oid); err != nil {
				problems = append(problems, err)
			}
		}
	}
	return errors.Join(problems...)
}

// startOver says how to recover from rows changed outside the log: a new
// snapshot, from a new slot, since replaying the old one would bring back
// rows the table no longer has.
func (s *Source) startOver() string {
	return fmt.Sprintf("To recover, snapshot again from scratch: stop cdc, drop the replication slot (SELECT pg_drop_replication_slot('%s')), delete the checkpoint (a tombstone for the connector's key in the checkpoint topic) and the entities' topics (or give them new topic versions), then start cdc",
		s.cfg.Slot)
}
