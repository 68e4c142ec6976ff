package postgres

import (
	"strings"
	"testing"

	"github.com/cdc-dev/cdc"
)

// What a REPLICA IDENTITY lets cdc serve: NOTHING logs no old key; any
// identity but FULL needs a primary key to read values back by.
func TestIdentityProblems(t *testing.T) {
	keyed, keyless := &cdc.Table{PrimaryKey: []int{0}}, &cdc.Table{}
	for _, c := range []struct {
		identity byte
		table    *cdc.Table
		want     string // "" for none
	}{
		{'f', keyless, ""},
		{'d', keyed, ""},
		{'i', keyed, ""},
		{'n', keyed, "REPLICA IDENTITY NOTHING"},
		{'d', keyless, "REPLICA IDENTITY DEFAULT and no primary key"},
		{'i', keyless, "REPLICA IDENTITY USING INDEX and no primary key"},
	} {
		err := identityProblem("table public.t", `"public"."t"`, c.identity, c.table)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%c: %v, want none", c.identity, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%c: %v, want %q", c.identity, err, c.want)
		}
	}
}
