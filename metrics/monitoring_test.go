package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cdc-dev/cdc"
)

// The alert rules and the dashboard in monitoring/ are part of the product:
// these tests keep them in step with the metrics the daemon exposes, and let
// promtool check their PromQL and run the rules' unit tests.

const (
	alertsFile     = "../monitoring/alerts.yaml"
	alertTestsFile = "../monitoring/alerts_test.yaml"
	dashboardFile  = "../monitoring/grafana-dashboard.json"
)

type fixedProgress []cdc.TableProgress

func (p fixedProgress) SnapshotProgress() []cdc.TableProgress { return p }

// exposedNames returns the name of every metric family a running daemon exposes.
func exposedNames(t *testing.T) []string {
	t.Helper()
	m := New()
	m.Entity("customer") // the per-entity series exist once an entity is known
	m.BrokerError("connect")
	var progress cdc.ProgressReporter = fixedProgress{{Table: cdc.TableName{Schema: "public", Name: "customer"}, Started: time.Now()}}
	m.progress.Store(&progress)
	var readBack cdc.ReadBackReporter = fixedReadBack{}
	m.readBack.Store(&readBack)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	return names
}

// dashboardExprs returns each query of the dashboard by panel title.
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	exprs := map[string][]string{}
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			exprs[p.Title] = append(exprs[p.Title], target.Expr)
		}
	}
	if len(exprs) == 0 {
		t.Fatalf("%s has no queries", dashboardFile)
	}
	return exprs
}

func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	exprs := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr
		}
	}
	return exprs
}

var metricName = regexp.MustCompile(`\b(cdc|process)_[a-z_]+`)

func TestMonitoringUsesOnlyExposedMetrics(t *testing.T) {
	exposed := exposedNames(t)
	check := func(where, expr string) {
		for _, name := range metricName.FindAllString(expr, -1) {
			if !slices.Contains(exposed, name) {
				t.Errorf("%s uses %s, which the daemon does not expose", where, name)
			}
		}
	}
	for alert, expr := range alertExprs(t) {
		check("alert "+alert, expr)
	}
	for panel, exprs := range dashboardExprs(t) {
		for _, expr := range exprs {
			check("dashboard panel "+panel, expr)
		}
	}
	// And the other way round: the operator sees every metric of cdc's own.
	var all strings.Builder
	for _, exprs := range dashboardExprs(t) {
		all.WriteString(strings.Join(exprs, "\n"))
	}
	for _, name := range exposed {
		if strings.HasPrefix(name, "cdc_") && !strings.Contains(all.String(), name) {
			t.Errorf("the dashboard does not show %s", name)
		}
	}
}

// promtool returns the path of promtool: $PROMTOOL (set by make test, which
// installs it), or the one on PATH.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("PROMTOOL=%s: %v (make deps installs it)", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("promtool is missing: run the tests with make test, which installs it")
	}
	t.Skip("promtool is not installed; make test installs it and runs this test")
	return ""
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAlertRulesPassPromtool(t *testing.T) {
	runPromtool(t, "check", "rules", alertsFile)
	runPromtool(t, "test", "rules", alertTestsFile)
}

// The dashboard's queries are checked as PromQL by promtool, written as
// recording rules with Grafana's variables replaced by values.
func TestDashboardQueriesParse(t *testing.T) {
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$job", "cdc", "$instance", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for panel, exprs := range dashboardExprs(t) {
		for _, expr := range exprs {
			n++
			quoted, _ := json.Marshal(grafana.Replace(expr))
			fmt.Fprintf(&rules, "      # %s\n      - record: dashboard:query_%d\n        expr: %s\n", panel, n, quoted)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, "check", "rules", path)
}

type fixedReadBack struct{}

func (fixedReadBack) ReadBack() (queries, rows int64) { return 1, 2 }
