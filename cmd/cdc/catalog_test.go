package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

func TestCatalogReadsBackWhatItWrote(t *testing.T) {
	table := &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "orders"},
		Columns: []cdc.Column{
			{Name: "id", DatabaseType: "uuid", Kind: cdc.KindString},
			{Name: "total", DatabaseType: "numeric(12,2)", Kind: cdc.KindDecimal, Precision: 12, Scale: 2, Nullable: true},
			{Name: "placed_at", DatabaseType: "timestamp(3) with time zone", Kind: cdc.KindTimestamp, FractionDigits: 3, WithTimeZone: true},
		},
		PrimaryKey: []int{0}, UniqueKeys: [][]int{{2, 0}}, Omitted: map[string]string{"doubled": "generated"}}
	settings := map[cdc.TableName]cdc.TableSettings{table.Name: {ReplicaIdentity: "DEFAULT", PartitionIdentities: map[string]string{"public.orders_2026": "FULL"}}}
	data, err := encodeCatalog("postgres", []*cdc.Table{table}, settings)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	source, tables, gotSettings, err := readCatalog(path)
	if err != nil || source != "postgres" || len(tables) != 1 || !reflect.DeepEqual(tables[0], table) || !reflect.DeepEqual(gotSettings, settings) {
		t.Fatalf("read back %q, %+v, %+v, %v", source, tables, gotSettings, err)
	}
}

// A catalog file cdc did not write, or cannot read, is refused with what is
// wrong in it.
func TestCatalogRefusesAFileItCannotRead(t *testing.T) {
	table := `{"name": "public.orders", "columns": [{"name": "id", "type": "int", "kind": "int"}], "primary_key": ["id"]}`
	for _, c := range []struct{ name, file, want string }{
		{"not JSON", `tables: []`, "is not a catalog written by cdc catalog"},
		{"unknown key", `{"version": 1, "source": "postgres", "tabels": []}`, `is not a catalog written by cdc catalog: json: unknown field "tabels"`},
		{"another version", `{"version": 2, "source": "postgres", "tables": []}`, "is a catalog of version 2; this cdc reads version 1: write it again with cdc catalog"},
		{"unknown kind", `{"version": 1, "source": "postgres", "tables": [` + strings.Replace(table, `"kind": "int"`, `"kind": "blob"`, 1) + `]}`, `table public.orders, column id: kind "blob" is not one cdc knows`},
		{"key of no column", `{"version": 1, "source": "postgres", "tables": [` + strings.Replace(table, `["id"]`, `["no_id"]`, 1) + `]}`, "table public.orders: key column no_id is not one of its columns"},
		{"table without schema", `{"version": 1, "source": "postgres", "tables": [` + strings.Replace(table, "public.orders", "orders", 1) + `]}`, `table "orders": want schema.table`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.json")
			if err := os.WriteFile(path, []byte(c.file), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := readCatalog(path); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v, want %q with the file's path", err, c.want)
			}
		})
	}
}
