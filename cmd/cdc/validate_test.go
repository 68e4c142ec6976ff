package main

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

// A configuration mistake with a fix is listed by cdc validate with the fix
// on a line of its own; one without stays on its line.
func TestValidatePrintsEachFixOnItsOwnLine(t *testing.T) {
	config := strings.Replace(validConfig, "      id: customer_id\n", "      id: {column: customer_id, mask: hash}\n", 1)
	config = strings.Replace(config, "name: shop", "name: shop/bad", 1)
	_, err := LoadConfig(writeConfig(t, config))
	if err == nil {
		t.Fatal("the configuration loaded")
	}
	var out strings.Builder
	r := &report{stderr: &out}
	r.check("configuration", err)
	want := "cdc.yaml:13: entities[0].fields: hash masks need a secret salt\n" +
		"    fix: set masking.salt (e.g. masking: {salt: ${CDC_MASK_SALT}})\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks\n%s\ngot:\n%s", want, out.String())
	}
	if !strings.Contains(out.String(), "cdc.yaml:1: name: want a connector name") {
		t.Errorf("the mistake without a fix is not listed as it was:\n%s", out.String())
	}
	if r.count != 2 {
		t.Errorf("counted %d problems, want 2:\n%s", r.count, out.String())
	}
}

// With neither the database nor the brokers answering, validate still lists
// every mistake that needs no connection — an expression's syntax, an enum
// symbol the schema lacks — with its line, and says what it could not check.
func TestValidateChecksWhatNeedsNoConnection(t *testing.T) {
	config := strings.NewReplacer(
		"dsn: postgres://localhost/shop", "dsn: postgres://cdc:s3cret@"+freeAddress(t)+"/shop",
		"brokers: [localhost:9092]", "brokers: ["+freeAddress(t)+"]",
		"    fields:\n      id: customer_id\n", "    where: \"active ==\"\n    fields:\n      id: customer_id\n"+
			"  - name: order\n    table: public.orders\n    topic: shop.order.v1\n    schema: o.avsc\n    key: [id]\n    fields:\n"+
			"      id: {expr: \"order_id +\"}\n      state: {column: status, enum: {1: OPEN, 2: SHIPPED}}\n",
	).Replace(validConfig)
	path := writeConfig(t, config)
	schema := `{"type":"record","name":"O","fields":[{"name":"id","type":"long"},{"name":"state","type":{"type":"enum","name":"State","symbols":["OPEN","CLOSED"]}}]}`
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "o.avsc"), []byte(schema), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err := Run(t.Context(), []string{"validate", "--config", path}, &out, &out)
	for _, want := range []string{
		"cdc.yaml:13: entity \"customer\": where: expression `active ==`: at column",
		"cdc.yaml:22: entity \"order\", field \"id\": expression `order_id +`: at column",
		"cdc.yaml:23: entity \"order\", field \"state\": symbols SHIPPED are not in enum State",
		"not checked: the database's prerequisites, the mappings against the tables and the enum codes in them (the database could not be reached)",
		"not checked: the topics and the schema registry (the brokers could not be reached)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if err == nil || strings.Contains(out.String(), "s3cret") {
		t.Errorf("validate returned %v; output:\n%s", err, out.String())
	}
}

// --against checks each schema file against the same file at a git revision,
// as a registry would, where none is reachable: a pull request's CI job.
func TestValidateAgainstARevision(t *testing.T) {
	path := writeConfig(t, validConfig)
	dir := filepath.Dir(path)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.email=ci@example.com", "-c", "user.name=ci"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "v1")
	check := func(schema string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "c.avsc"), []byte(schema), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := newConnector(cfg, slog.New(slog.DiscardHandler), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		validateAgainst(&report{stdout: &out, stderr: &out}, c, "HEAD", "BACKWARD")
		return out.String()
	}
	if out := check(`{"type":"record","name":"C","fields":[{"name":"id","type":"long"},{"name":"name","type":"string","default":""}]}`); out != "ok: schemas BACKWARD compatible with HEAD\n" {
		t.Errorf("a field added with a default:\n%s", out)
	}
	if out := check(`{"type":"record","name":"C","fields":[{"name":"id","type":"long"},{"name":"name","type":"string"}]}`); !strings.Contains(out,
		`cdc.yaml:8: entity "customer": the schema is not BACKWARD compatible with c.avsc at HEAD: consumers using the new schema cannot read records written with c.avsc at HEAD: field "name" is not in the writer's schema and has no default in the reader's`) {
		t.Errorf("a field added without a default:\n%s", out)
	}
	if out := check(`{"type":"record","name":"C","fields":[{"name":"id","type":"string"}]}`); !strings.Contains(out, "the key changes from") {
		t.Errorf("a key retyped:\n%s", out)
	}
	var out strings.Builder
	cfg, _ := LoadConfig(path)
	c, _ := newConnector(cfg, slog.New(slog.DiscardHandler), slog.New(slog.DiscardHandler))
	validateAgainst(&report{stdout: &out, stderr: &out}, c, "no-such-branch", "BACKWARD")
	if !strings.Contains(out.String(), "--against no-such-branch: no such revision") {
		t.Errorf("an unknown revision:\n%s", out.String())
	}
}

// With --catalog, validate contacts no server: a CI machine has neither
// database nor brokers.
func TestValidateWithACatalogContactsNoServer(t *testing.T) {
	config := strings.NewReplacer("dsn: postgres://localhost/shop", "dsn: postgres://cdc@"+freeAddress(t)+"/shop",
		"brokers: [localhost:9092]", "brokers: ["+freeAddress(t)+"]").Replace(validConfig)
	path := writeConfig(t, config)
	table := &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "customer"},
		Columns: []cdc.Column{{Name: "customer_id", DatabaseType: "bigint", Kind: cdc.KindInt, Bits: 64}}, PrimaryKey: []int{0}}
	catalog, err := encodeCatalog("postgres", []*cdc.Table{table}, map[cdc.TableName]cdc.TableSettings{table.Name: {ReplicaIdentity: "FULL"}})
	if err != nil {
		t.Fatal(err)
	}
	catalogPath := filepath.Join(filepath.Dir(path), "catalog.json")
	if err := os.WriteFile(catalogPath, catalog, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := Run(t.Context(), []string{"validate", "--catalog", catalogPath, "--config", path}, &out, &out); err != nil {
		t.Fatalf("validate --catalog: %v\n%s", err, out.String())
	}
	for _, want := range []string{"ok: mappings of 1 tables (against " + catalogPath + ")", "ok: table settings",
		"not checked: the topics and the schema registry (--catalog: no servers)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// Mistakes in validate's own flags and files are refused, saying which.
func TestValidateRefusesBadCatalogsAndLevels(t *testing.T) {
	path := writeConfig(t, validConfig)
	var out, errOut strings.Builder
	if err := Run(t.Context(), []string{"validate", "--config", path, "--compatibility", "SIDEWAYS"}, &out, &errOut); err != errUsage ||
		!strings.Contains(errOut.String(), `--compatibility "SIDEWAYS": want one of BACKWARD,`) {
		t.Errorf("an unknown level: %v, %s", err, errOut.String())
	}
	other := &cdc.Table{Name: cdc.TableName{Schema: "public", Name: "orders"}, Columns: []cdc.Column{{Name: "id", Kind: cdc.KindInt}}}
	catalog, _ := encodeCatalog("postgres", []*cdc.Table{other}, nil)
	catalogPath := filepath.Join(filepath.Dir(path), "catalog.json")
	if err := os.WriteFile(catalogPath, catalog, 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := Run(t.Context(), []string{"validate", "--config", path, "--catalog", catalogPath}, &out, &out)
	if err == nil || !strings.Contains(out.String(), "table public.customer is not in "+catalogPath+": write the catalog again with cdc catalog") {
		t.Errorf("a catalog without a mapped table: %v\n%s", err, out.String())
	}
	// --against needs the schema files in git.
	cfg, _ := LoadConfig(path)
	c, _ := newConnector(cfg, slog.New(slog.DiscardHandler), slog.New(slog.DiscardHandler))
	out.Reset()
	validateAgainst(&report{stdout: &out, stderr: &out}, c, "HEAD", "BACKWARD")
	if !strings.Contains(out.String(), "--against needs the schema files in a git repository") {
		t.Errorf("schema files outside git:\n%s", out.String())
	}
}
