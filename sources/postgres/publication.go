package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc"
)

// publication is the connector's publication as pg_publication has it.
type publication struct {
	exists, all                           bool
	insert, update, delete, truncate, via bool // via: publish_via_partition_root
}

func (s *Source) readPublication(ctx context.Context, conn *pgx.Conn) (publication, error) {
	truncate, via := "pubtruncate", "pubviaroot"
	if s.serverVersion < 11 {
		truncate = "false"
	}
	if s.serverVersion < 13 {
		via = "false"
	}
	p := publication{exists: true}
	err := conn.QueryRow(ctx, `SELECT puballtables, pubinsert, pubupdate, pubdelete, `+truncate+`, `+via+`
		FROM pg_catalog.pg_publication WHERE pubname = $1`, s.cfg.Publication).
		Scan(&p.all, &p.insert, &p.update, &p.delete, &p.truncate, &p.via)
	if errors.Is(err, pgx.ErrNoRows) {
		return publication{}, nil
	}
	if err != nil {
		return publication{}, fmt.Errorf("read publication %s: %w", s.cfg.Publication, err)
	}
	return p, nil
}

// publicationProblems lists what an existing publication would make cdc miss:
// a kind of change it does not publish (a TRUNCATE it does not publish passes
// unseen), partitioned tables published partition by partition (their changes
// would arrive under the partitions' names), row filters and column lists on
// mapped tables, and a mapped partition whose changes are published under an
// ancestor's name. A publication cdc creates has none of them.
func (s *Source) publicationProblems(ctx context.Context, tables map[cdc.TableName]relation) ([]error, error) {
	p, err := s.readPublication(ctx, s.conn)
	if err != nil || !p.exists {
		return nil, err
	}
	pub := pgx.Identifier{s.cfg.Publication}.Sanitize()
	var problems []error
	var missing []string
	for _, kind := range []struct {
		name      string
		published bool
	}{{"insert", p.insert}, {"update", p.update}, {"delete", p.delete}, {"truncate", p.truncate}} {
		if !kind.published {
			missing = append(missing, kind.name)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, &cdc.Problem{What: fmt.Sprintf("publication %s does not publish %s, so cdc would not see those changes", s.cfg.Publication, strings.Join(missing, ", ")),
			Fix: fmt.Sprintf("ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate')", pub)})
	}
	for _, name := range s.cfg.Tables {
		rel, ok := tables[name]
		if !ok {
			continue
		}
		if rel.partitioned && !p.via && s.serverVersion >= 13 {
			problems = append(problems, &cdc.Problem{What: fmt.Sprintf("publication %s publishes the partitioned table %s partition by partition, so its changes would arrive under the partitions' names", s.cfg.Publication, name),
				Fix: fmt.Sprintf("ALTER PUBLICATION %s SET (publish_via_partition_root = true)", pub)})
		}
		if rel.partition && p.via {
			var ancestor *string
			if err := s.conn.QueryRow(ctx, `SELECT min(a.relid::regclass::text) FROM pg_catalog.pg_partition_ancestors($1) a
				JOIN pg_catalog.pg_class c ON c.oid = a.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
				JOIN pg_catalog.pg_publication_tables t ON t.schemaname = n.nspname AND t.tablename = c.relname AND t.pubname = $2
				WHERE a.relid <> $1`, rel.oid, s.cfg.Publication).Scan(&ancestor); err != nil {
				return nil, fmt.Errorf("read the ancestors of %s: %w", name, err)
			}
			if ancestor != nil {
				problems = append(problems, &cdc.Problem{What: fmt.Sprintf("table %s is a partition of %s, which publication %s publishes with publish_via_partition_root: the changes of %s arrive under the name %s",
					name, *ancestor, s.cfg.Publication, name, *ancestor), Fix: fmt.Sprintf("map %s instead", *ancestor)})
			}
		}
	}
	if s.serverVersion < 15 {
		return problems, nil
	}
	oids := make([]uint32, 0, len(tables))
	for _, rel := range tables {
		oids = append(oids, rel.oid)
	}
	rows, err := s.conn.Query(ctx, `SELECT n.nspname, c.relname, coalesce(pg_catalog.pg_get_expr(r.prqual, r.prrelid), ''), r.prattrs IS NOT NULL
		FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid
		JOIN pg_catalog.pg_class c ON c.oid = r.prrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE p.pubname = $1 AND r.prrelid = ANY($2) AND (r.prqual IS NOT NULL OR r.prattrs IS NOT NULL)
		ORDER BY 1, 2`, s.cfg.Publication, oids)
	if err != nil {
		return nil, fmt.Errorf("read the tables of publication %s: %w", s.cfg.Publication, err)
	}
	var schema, table, filter string
	var columnList bool
	_, err = pgx.ForEachRow(rows, []any{&schema, &table, &filter, &columnList}, func() error {
		ident := pgx.Identifier{schema, table}.Sanitize()
		what := "a column list"
		if filter != "" {
			what = "a row filter (WHERE " + filter + ")"
		}
		problems = append(problems, &cdc.Problem{What: fmt.Sprintf("publication %s publishes %s.%s with %s, so cdc would miss changes (a row that leaves the filter is never deleted from the topic)", s.cfg.Publication, schema, table, what),
			Fix: fmt.Sprintf("publish the whole table with ALTER PUBLICATION %s SET TABLE ... listing %s without it, and filter in the entity with where:", pub, ident)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the tables of publication %s: %w", s.cfg.Publication, err)
	}
	return problems, nil
}

// ensurePublication creates the publication for the mapped tables, or adds the
// tables an existing one lacks; every start does, before streaming, so that an
// entity on a table added later is published from then on (its backfill reads
// what came before). The publication must exist before the slot is created:
// pgoutput reads publications as of each change, and refuses changes logged
// before the publication existed.
func (s *Source) ensurePublication(ctx context.Context) error {
	pub := pgx.Identifier{s.cfg.Publication}.Sanitize()
	p, err := s.readPublication(ctx, s.conn)
	if err != nil {
		return err
	}
	if !p.exists {
		options := "publish = 'insert, update, delete, truncate'"
		if s.serverVersion >= 13 {
			options += ", publish_via_partition_root = true" // a partitioned table is published as the one table its users see
		}
		create := "CREATE PUBLICATION " + pub + " FOR TABLE " + tableList(s.cfg.Tables) + " WITH (" + options + ")"
		if _, err := s.conn.Exec(ctx, create); err != nil {
			return fmt.Errorf("create publication %s: %w; or create it yourself: %s", s.cfg.Publication, err, create)
		}
		s.log.Info("created publication", "publication", s.cfg.Publication, "tables", tableList(s.cfg.Tables))
		return nil
	}
	if p.all {
		return nil
	}
	var missing []cdc.TableName
	for _, t := range s.cfg.Tables {
		var in bool
		if err := s.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)`,
			s.cfg.Publication, t.Schema, t.Name).Scan(&in); err != nil {
			return fmt.Errorf("read publication %s: %w", s.cfg.Publication, err)
		}
		if !in {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := s.conn.Exec(ctx, "ALTER PUBLICATION "+pub+" ADD TABLE "+tableList(missing)); err != nil {
		return fmt.Errorf("add %s to publication %s: %w; or add them yourself: ALTER PUBLICATION %s ADD TABLE %s",
			tableList(missing), s.cfg.Publication, err, pub, tableList(missing))
	}
	s.log.Info("added tables to publication", "publication", s.cfg.Publication, "tables", tableList(missing))
	return nil
}

// leaf is a partition that holds rows (not itself partitioned).
type leaf struct {
	oid             uint32
	name            cdc.TableName
	replicaIdentity byte
}

// leafPartitions lists the leaf partitions of a partitioned table, at any depth.
func (s *Source) leafPartitions(ctx context.Context, conn *pgx.Conn, root uint32) ([]leaf, error) {
	rows, err := conn.Query(ctx, `SELECT c.oid, n.nspname, c.relname, c.relreplident::text FROM pg_catalog.pg_partition_tree($1) t
		JOIN pg_catalog.pg_class c ON c.oid = t.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE t.isleaf AND t.relid <> $1 ORDER BY c.oid`, root)
	if err != nil {
		return nil, fmt.Errorf("list the partitions of table %d: %w", root, err)
	}
	var leaves []leaf
	var l leaf
	var ident string
	_, err = pgx.ForEachRow(rows, []any{&l.oid, &l.name.Schema, &l.name.Name, &ident}, func() error {
		l.replicaIdentity = ident[0]
		leaves = append(leaves, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the partitions of table %d: %w", root, err)
	}
	return leaves, nil
}
