package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/cdc-dev/cdc"
)

// typeInfo says how values of a base type decode.
type typeInfo struct {
	kind     cdc.Kind
	bits     int
	withZone bool
}

// builtinTypes maps the OIDs of pg_type's built-in base types (stable across
// versions, listed in pg_type.dat) to their decoding. Everything else, including
// arrays, ranges, intervals and network types, is carried as its text output.
var builtinTypes = map[uint32]typeInfo{
	16:   {kind: cdc.KindBool},                      // bool
	17:   {kind: cdc.KindBytes},                     // bytea
	20:   {kind: cdc.KindInt, bits: 64},             // int8
	21:   {kind: cdc.KindInt, bits: 16},             // int2
	23:   {kind: cdc.KindInt, bits: 32},             // int4
	26:   {kind: cdc.KindUint, bits: 32},            // oid
	114:  {kind: cdc.KindJSON},                      // json
	700:  {kind: cdc.KindFloat, bits: 32},           // float4
	701:  {kind: cdc.KindFloat, bits: 64},           // float8
	1082: {kind: cdc.KindDate},                      // date
	1083: {kind: cdc.KindTime},                      // time
	1114: {kind: cdc.KindTimestamp},                 // timestamp
	1184: {kind: cdc.KindTimestamp, withZone: true}, // timestamptz
	1700: {kind: cdc.KindDecimal},                   // numeric
	3802: {kind: cdc.KindJSON},                      // jsonb
}

// column describes a column from its base type and type modifier.
func column(name, databaseType string, baseOID uint32, typmod int32, notNull bool) cdc.Column {
	info, ok := builtinTypes[baseOID]
	if !ok {
		info = typeInfo{kind: cdc.KindString}
	}
	c := cdc.Column{Name: name, DatabaseType: databaseType, Kind: info.kind, Nullable: !notNull, Bits: info.bits, WithTimeZone: info.withZone}
	switch info.kind {
	case cdc.KindDecimal:
		// numeric's typmod is ((precision << 16) | scale) + VARHDRSZ; -1 when unconstrained.
		if typmod >= 4 {
			c.Precision = int((typmod - 4) >> 16 & 0xffff)
			c.Scale = int(int16((typmod - 4) & 0xffff))
		}
	case cdc.KindTime, cdc.KindTimestamp:
		c.FractionDigits = 6
		if typmod >= 0 {
			c.FractionDigits = int(typmod)
		}
	}
	return c
}

// generatedOmitted is why a generated column is not among a table's columns.
const generatedOmitted = "it is a generated column, and logical replication does not send generated columns' values: compute the field with an expr rule from the columns it is generated from"

// relation is what the catalog says about a table beyond its columns.
type relation struct {
	oid             uint32
	replicaIdentity byte // 'd' default, 'f' full, 'i' index, 'n' nothing
	partitioned     bool
	// partition says the table is itself a partition of another.
	partition bool
	// textOnly names a column whose type cdc decodes in text only (see
	// binary.go), "" if none.
	textOnly string
}

// describe reads a table's columns, primary key and unique keys from the
// catalog. Generated columns are left out: logical replication does not send
// them (pgoutput before PostgreSQL 18, and from 18 on unless the publication
// asks), so the snapshot must not read what the stream cannot carry.
func (s *Source) describe(ctx context.Context, conn *pgx.Conn, name cdc.TableName) (*cdc.Table, relation, error) {
	var rel relation
	var kind, ident string
	err := conn.QueryRow(ctx, `SELECT c.oid, c.relkind::text, c.relreplident::text, c.relispartition FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`,
		name.Schema, name.Name).Scan(&rel.oid, &kind, &ident, &rel.partition)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, rel, missingTable(ctx, conn, name)
	}
	if err != nil {
		return nil, rel, fmt.Errorf("describe %s: %w", name, err)
	}
	if kind != "r" && kind != "p" {
		return nil, rel, fmt.Errorf("%s is not a table (relkind %s): logical replication publishes tables only", name, kind)
	}
	rel.replicaIdentity, rel.partitioned = ident[0], kind == "p"
	generated := "''"
	if s.serverVersion >= 12 {
		generated = "a.attgenerated::text"
	}
	rows, err := conn.Query(ctx, `SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull, pg_catalog.format_type(a.atttypid, a.atttypmod), `+generated+`
		FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, rel.oid)
	if err != nil {
		return nil, rel, fmt.Errorf("describe %s: %w", name, err)
	}
	type attr struct {
		name, typeName, generated string
		oid                       uint32
		typmod                    int32
		notNull                   bool
	}
	var attrs []attr
	for rows.Next() {
		var a attr
		if err := rows.Scan(&a.name, &a.oid, &a.typmod, &a.notNull, &a.typeName, &a.generated); err != nil {
			return nil, rel, fmt.Errorf("describe %s: %w", name, err)
		}
		attrs = append(attrs, a)
	}
	if err := rows.Err(); err != nil {
		return nil, rel, fmt.Errorf("describe %s: %w", name, err)
	}
	t := &cdc.Table{Name: name}
	for _, a := range attrs {
		if a.generated != "" {
			if t.Omitted == nil {
				t.Omitted = map[string]string{}
			}
			t.Omitted[a.name] = generatedOmitted
			continue
		}
		base, typmod, err := baseType(ctx, conn, a.oid, a.typmod)
		if err != nil {
			return nil, rel, fmt.Errorf("describe %s column %s: %w", name, a.name, err)
		}
		if _, ok := binaryDecoders[base]; !ok && rel.textOnly == "" {
			rel.textOnly = fmt.Sprintf("%s.%s (%s)", name, a.name, a.typeName)
		}
		t.Columns = append(t.Columns, column(a.name, a.typeName, base, typmod, a.notNull))
	}
	keys, err := conn.Query(ctx, `SELECT i.indisprimary, i.indisreplident, array_agg(a.attname::text ORDER BY k.ord)
		FROM pg_catalog.pg_index i
		CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = $1 AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
			AND k.ord <= i.indnkeyatts
		GROUP BY i.indexrelid, i.indisprimary, i.indisreplident HAVING bool_and(a.attnotnull)
		ORDER BY i.indisprimary DESC, count(*), i.indexrelid`, rel.oid)
	if err != nil {
		return nil, rel, fmt.Errorf("describe the keys of %s: %w", name, err)
	}
	var primary, identity bool
	var columns []string
	var identityIndex []int
	_, err = pgx.ForEachRow(keys, []any{&primary, &identity, &columns}, func() error {
		key := make([]int, len(columns))
		for i, c := range columns {
			if key[i] = t.Column(c); key[i] < 0 {
				return nil // a generated column: not a key the log can tell rows by
			}
		}
		if identity {
			identityIndex = key
		}
		if primary {
			t.PrimaryKey = key
		} else {
			t.UniqueKeys = append(t.UniqueKeys, key)
		}
		return nil
	})
	if err != nil {
		return nil, rel, fmt.Errorf("describe the keys of %s: %w", name, err)
	}
	switch rel.replicaIdentity {
	case 'd':
		t.Identity = append([]int{}, t.PrimaryKey...)
	case 'i':
		t.Identity = append([]int{}, identityIndex...)
	case 'n':
		t.Identity = []int{}
	}
	return t, rel, nil
}

// baseType follows domains down to their base type: a domain decodes like the
// type it constrains (Sakila's "year" domain is an integer).
func baseType(ctx context.Context, conn *pgx.Conn, oid uint32, typmod int32) (uint32, int32, error) {
	for range 32 {
		if _, ok := builtinTypes[oid]; ok || oid < 10000 {
			return oid, typmod, nil
		}
		var typtype string
		var base uint32
		var baseTypmod int32
		if err := conn.QueryRow(ctx, `SELECT typtype::text, typbasetype, typtypmod FROM pg_catalog.pg_type WHERE oid = $1`, oid).
			Scan(&typtype, &base, &baseTypmod); err != nil {
			return 0, 0, fmt.Errorf("type %d: %w", oid, err)
		}
		if typtype != "d" {
			return oid, typmod, nil
		}
		oid, typmod = base, baseTypmod
	}
	return 0, 0, fmt.Errorf("type %d: domain nesting too deep", oid)
}

// missingTable explains a table that is not in the catalog, listing the tables
// that are in its schema (a typo is the usual cause).
func missingTable(ctx context.Context, conn *pgx.Conn, name cdc.TableName) error {
	rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1 LIMIT 50`, name.Schema)
	if err != nil {
		return fmt.Errorf("table %s not found", name)
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(names) == 0 {
		return fmt.Errorf("table %s not found: schema %q has no tables (or this user cannot see them)", name, name.Schema)
	}
	return fmt.Errorf("table %s not found: dropped or renamed since it was mapped, or a typo (tables in %s: %s)", name, name.Schema, strings.Join(names, ", "))
}

// tableFromRelation describes a table from a pgoutput relation message: names,
// types and type modifiers as of the changes that follow it. The message does not
// carry nullability or type names; those come from the catalog as it is now,
// which is conservative: a column no longer in the catalog counts as nullable.
// It returns known itself when nothing changed, and the base type of each
// column, which decodes its values sent in binary.
func (s *Source) tableFromRelation(ctx context.Context, m *pglogrepl.RelationMessage, known *cdc.Table) (*cdc.Table, []uint32, error) {
	oids := make([]uint32, len(m.Columns))
	typmods := make([]int32, len(m.Columns))
	for i, c := range m.Columns {
		oids[i], typmods[i] = c.DataType, c.TypeModifier
	}
	typeRows, err := s.conn.Query(ctx, `SELECT pg_catalog.format_type(t.oid, t.typmod)
		FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS t(oid, typmod, n) ORDER BY t.n`, oids, typmods)
	if err != nil {
		return nil, nil, fmt.Errorf("describe %s.%s from its relation message: %w", m.Namespace, m.RelationName, err)
	}
	typeNames, err := pgx.CollectRows(typeRows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("describe %s.%s from its relation message: %w", m.Namespace, m.RelationName, err)
	}
	rows, err := s.conn.Query(ctx, `SELECT attname, attnotnull FROM pg_catalog.pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, m.RelationID)
	if err != nil {
		return nil, nil, fmt.Errorf("describe %s.%s: %w", m.Namespace, m.RelationName, err)
	}
	notNull := map[string]bool{}
	var attname string
	var nn bool
	if _, err := pgx.ForEachRow(rows, []any{&attname, &nn}, func() error { notNull[attname] = nn; return nil }); err != nil {
		return nil, nil, fmt.Errorf("describe %s.%s: %w", m.Namespace, m.RelationName, err)
	}
	t := &cdc.Table{Name: known.Name}
	bases := make([]uint32, len(m.Columns))
	for i, c := range m.Columns {
		base, typmod, err := baseType(ctx, s.conn, c.DataType, c.TypeModifier)
		if err != nil {
			return nil, nil, fmt.Errorf("describe %s column %s: %w", known.Name, c.Name, err)
		}
		bases[i] = base
		t.Columns = append(t.Columns, column(c.Name, typeNames[i], base, typmod, notNull[c.Name]))
	}
	t.PrimaryKey = keyIn(t, known, known.PrimaryKey)
	for _, key := range known.UniqueKeys {
		if k := keyIn(t, known, key); len(k) == len(key) {
			t.UniqueKeys = append(t.UniqueKeys, k)
		}
	}
	t.Omitted = known.Omitted
	if m.ReplicaIdentity != 'f' {
		// The columns the server flags as the key of old rows.
		t.Identity = []int{}
		for i, c := range m.Columns {
			if c.Flags&1 != 0 {
				t.Identity = append(t.Identity, i)
			}
		}
	}
	if sameShape(t, known) {
		return known, bases, nil
	}
	return t, bases, nil
}

// keyIn finds in t, by name, the columns of known's key that t still has.
func keyIn(t, known *cdc.Table, key []int) []int {
	var in []int
	for _, k := range key {
		if ord := t.Column(known.Columns[k].Name); ord >= 0 {
			in = append(in, ord)
		}
	}
	return in
}

func sameShape(a, b *cdc.Table) bool {
	return slices.Equal(a.Columns, b.Columns) && slices.Equal(a.PrimaryKey, b.PrimaryKey) &&
		(a.Identity == nil) == (b.Identity == nil) && slices.Equal(a.Identity, b.Identity) &&
		slices.EqualFunc(a.UniqueKeys, b.UniqueKeys, slices.Equal)
}

// TableSettings implements cdc.SettingsReader: each table's replica identity,
// and its leaf partitions' if it is partitioned.
func (s *Source) TableSettings(ctx context.Context, tables []cdc.TableName) (map[cdc.TableName]cdc.TableSettings, error) {
	out := map[cdc.TableName]cdc.TableSettings{}
	for _, name := range tables {
		_, rel, err := s.describe(ctx, s.conn, name)
		if err != nil {
			return nil, err
		}
		settings := cdc.TableSettings{ReplicaIdentity: identityName(rel.replicaIdentity)}
		if rel.partitioned {
			leaves, err := s.leafPartitions(ctx, s.conn, rel.oid)
			if err != nil {
				return nil, err
			}
			settings.PartitionIdentities = map[string]string{}
			for _, leaf := range leaves {
				settings.PartitionIdentities[leaf.name.String()] = identityName(leaf.replicaIdentity)
			}
		}
		out[name] = settings
	}
	return out, nil
}
