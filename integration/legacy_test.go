package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// ownEntity is an entity on a table of the test's own, for schemas that real
// legacy databases have and the shop schema lacks.
type ownEntity struct {
	name, table string
	schema      string // the value schema, JSON
	key         string // YAML, e.g. "[region, id]"
	fields      string // YAML of the field rules, one "field: rule" per line
	extra       string // more entity keys, YAML lines (where: ...)
}

// useEntities replaces the configuration's entities with these; their tables
// are in the scenario's database (a name without a schema is put in it).
func (s *scenario) useEntities(entities ...ownEntity) {
	s.t.Helper()
	schemas := map[string]string{}
	for _, e := range entities {
		schemas[e.name+".avsc"] = e.schema
	}
	dir := writeSchemas(s.t, schemas)
	var b strings.Builder
	for _, e := range entities {
		table := e.table
		if !strings.Contains(table, ".") {
			table = map[bool]string{false: "public", true: s.name}[s.mysql] + "." + table
		}
		fmt.Fprintf(&b, "  - name: %s\n    table: %s\n    topic: legacy.%s.v1\n    schema: %s/%s.avsc\n    key: %s\n", e.name, table, e.name, dir, e.name, e.key)
		for _, line := range strings.Split(strings.TrimSpace(e.extra), "\n") {
			if line != "" {
				fmt.Fprintf(&b, "    %s\n", strings.TrimSpace(line))
			}
		}
		b.WriteString("    fields:\n")
		for _, line := range strings.Split(strings.TrimSpace(e.fields), "\n") {
			fmt.Fprintf(&b, "      %s\n", strings.TrimSpace(line))
		}
	}
	s.setEntities(b.String())
}

// verified runs cdc verify until it finds the topics equal to their tables
// (the daemon may be catching up) and returns its output.
func (s *scenario) verified() string {
	s.t.Helper()
	var out string
	err := harness.Eventually(90*time.Second, func() (bool, error) {
		var err error
		out, err = s.runToEnd(2*time.Minute, "verify", "--config", s.config)
		return err == nil, s.daemonsAlive()
	})
	if err != nil {
		s.t.Fatalf("cdc verify kept finding differences: %v\n%s", err, out)
	}
	return out
}

// validate runs cdc validate on the scenario's configuration.
func (s *scenario) validateOutput() (string, error) {
	s.t.Helper()
	return s.runToEnd(2*time.Minute, "validate", "--config", s.config)
}

// mustRefuse checks that cdc validate and cdc run both refuse the
// configuration with messages that contain every want, and that run
// produced nothing.
func (s *scenario) mustRefuse(want ...string) {
	s.t.Helper()
	out, err := s.validateOutput()
	if err == nil {
		s.t.Errorf("cdc validate accepts it:\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			s.t.Errorf("cdc validate's output lacks %q:\n%s", w, out)
		}
	}
	s.start()
	s.mustExit(want...)
}

// avroRecord is a value schema of the given fields (see avroField).
func avroRecord(name string, fields ...string) string {
	return fmt.Sprintf(`{"type":"record","name":%q,"namespace":"legacy.v1","fields":[%s]}`, name, strings.Join(fields, ","))
}

func avroField(name, typ string) string {
	return fmt.Sprintf(`{"name":%q,"type":%s}`, name, typ)
}

// A primary key changed under a running daemon so that an entity's key no
// longer identifies rows stops it within the recheck interval; so would
// the restart.
func TestKeyChangedUnderTheDaemonStopsIt(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.start()
		s.waitCustomersMatch()
		if s.mysql {
			s.exec(`ALTER TABLE customer DROP PRIMARY KEY, ADD PRIMARY KEY (customer_id, email)`)
		} else {
			s.exec(`ALTER TABLE customer DROP CONSTRAINT customer_pkey CASCADE, ADD PRIMARY KEY (customer_id, email)`)
		}
		s.mustExit("the mapped tables changed in a way their log does not show", `key [id] does not identify the rows of`)
		s.start()
		s.mustExit(`key [id] does not identify the rows of`)
	})
}
