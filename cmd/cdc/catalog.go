package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/cdc-dev/cdc"
)

// catalogVersion is the version of the catalog file's format; a reader refuses
// others.
const catalogVersion = 1

// maxCatalogFile bounds the catalog file read: thousands of wide tables.
const maxCatalogFile = 64 << 20

// catalogFile is the mapped tables as the database describes them, written by
// cdc catalog and read by cdc validate --catalog: a pull request that changes a
// mapping is checked in CI with no database. It is stable — tables sorted by
// name, columns in table order, keys by column name — so that it can live in
// the repository and its diff says what changed.
type catalogFile struct {
	Version int            `json:"version"`
	Source  string         `json:"source"`
	Tables  []catalogTable `json:"tables"`
}

type catalogTable struct {
	Name       string            `json:"name"`
	Columns    []catalogColumn   `json:"columns"`
	PrimaryKey []string          `json:"primary_key,omitempty"`
	UniqueKeys [][]string        `json:"unique_keys,omitempty"`
	Omitted    map[string]string `json:"omitted,omitempty"` // column → why its values are not in the log
	// How the database logs the table (see cdc.TableSettings).
	cdc.TableSettings
}

type catalogColumn struct {
	Name           string `json:"name"`
	Type           string `json:"type"` // as the database spells it
	Kind           string `json:"kind"` // cdc's family of its values
	Nullable       bool   `json:"nullable,omitempty"`
	Bits           int    `json:"bits,omitempty"`
	Precision      int    `json:"precision,omitempty"`
	Scale          int    `json:"scale,omitempty"`
	FractionDigits int    `json:"fraction_digits,omitempty"`
	WithTimeZone   bool   `json:"with_time_zone,omitempty"`
}

// catalogCommand writes the mapped tables, as the database describes them, to
// stdout.
func catalogCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := loadFromFlags("catalog", args, stderr, nil)
	if err != nil {
		return err
	}
	c, err := openConnector(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer c.Close()
	tables, err := await(ctx, c.waits, "read the tables from the catalog", func(ctx context.Context) ([]*cdc.Table, error) {
		return c.src.Describe(ctx, c.tables)
	}, nil)
	if err != nil {
		return err
	}
	var settings map[cdc.TableName]cdc.TableSettings
	if reader, ok := c.src.(cdc.SettingsReader); ok {
		if settings, err = await(ctx, c.waits, "read the tables' settings", func(ctx context.Context) (map[cdc.TableName]cdc.TableSettings, error) {
			return reader.TableSettings(ctx, c.tables)
		}, nil); err != nil {
			return err
		}
	}
	data, err := encodeCatalog(cfg.Source.Kind, tables, settings)
	if err != nil {
		return err
	}
	_, err = stdout.Write(data)
	return err
}

func encodeCatalog(source string, tables []*cdc.Table, settings map[cdc.TableName]cdc.TableSettings) ([]byte, error) {
	file := catalogFile{Version: catalogVersion, Source: source}
	for _, t := range tables {
		ct := catalogTable{Name: t.Name.String(), Omitted: t.Omitted, TableSettings: settings[t.Name]}
		names := func(ordinals []int) []string {
			out := make([]string, len(ordinals))
			for i, o := range ordinals {
				out[i] = t.Columns[o].Name
			}
			return out
		}
		for _, col := range t.Columns {
			ct.Columns = append(ct.Columns, catalogColumn{Name: col.Name, Type: col.DatabaseType, Kind: col.Kind.String(), Nullable: col.Nullable,
				Bits: col.Bits, Precision: col.Precision, Scale: col.Scale, FractionDigits: col.FractionDigits, WithTimeZone: col.WithTimeZone})
		}
		ct.PrimaryKey = names(t.PrimaryKey)
		for _, k := range t.UniqueKeys {
			ct.UniqueKeys = append(ct.UniqueKeys, names(k))
		}
		file.Tables = append(file.Tables, ct)
	}
	slices.SortFunc(file.Tables, func(a, b catalogTable) int { return strings.Compare(a.Name, b.Name) })
	data, err := json.MarshalIndent(file, "", "  ")
	return append(data, '\n'), err
}

// readCatalog reads a catalog file written by cdc catalog: the source's kind,
// the tables, and their settings.
func readCatalog(path string) (source string, tables []*cdc.Table, settings map[cdc.TableName]cdc.TableSettings, err error) {
	data, err := readBounded(path, maxCatalogFile)
	if err != nil {
		return "", nil, nil, fmt.Errorf("read the catalog: %w", err)
	}
	var file catalogFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return "", nil, nil, fmt.Errorf("%s is not a catalog written by cdc catalog: %v", path, err)
	}
	if file.Version != catalogVersion {
		return "", nil, nil, fmt.Errorf("%s is a catalog of version %d; this cdc reads version %d: write it again with cdc catalog", path, file.Version, catalogVersion)
	}
	for _, ct := range file.Tables {
		name, err := cdc.ParseTableName(ct.Name)
		if err != nil {
			return "", nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		t := &cdc.Table{Name: name, Omitted: ct.Omitted}
		if settings == nil {
			settings = map[cdc.TableName]cdc.TableSettings{}
		}
		settings[name] = ct.TableSettings
		for _, col := range ct.Columns {
			kind, ok := parseKind(col.Kind)
			if !ok {
				return "", nil, nil, fmt.Errorf("%s: table %s, column %s: kind %q is not one cdc knows", path, ct.Name, col.Name, col.Kind)
			}
			t.Columns = append(t.Columns, cdc.Column{Name: col.Name, DatabaseType: col.Type, Kind: kind, Nullable: col.Nullable,
				Bits: col.Bits, Precision: col.Precision, Scale: col.Scale, FractionDigits: col.FractionDigits, WithTimeZone: col.WithTimeZone})
		}
		ordinals := func(names []string) ([]int, error) {
			out := make([]int, len(names))
			for i, n := range names {
				if out[i] = t.Column(n); out[i] < 0 {
					return nil, fmt.Errorf("%s: table %s: key column %s is not one of its columns", path, ct.Name, n)
				}
			}
			return out, nil
		}
		if t.PrimaryKey, err = ordinals(ct.PrimaryKey); err != nil {
			return "", nil, nil, err
		}
		for _, k := range ct.UniqueKeys {
			key, err := ordinals(k)
			if err != nil {
				return "", nil, nil, err
			}
			t.UniqueKeys = append(t.UniqueKeys, key)
		}
		tables = append(tables, t)
	}
	return file.Source, tables, settings, nil
}

func parseKind(name string) (cdc.Kind, bool) {
	for k := cdc.KindNull; k <= cdc.KindInvalid; k++ {
		if k.String() == name {
			return k, true
		}
	}
	return 0, false
}
