package integration

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cdc-dev/cdc/integration/harness"
)

// enableStandby lets several instances of the scenario's connector run: one
// leads, the others stand by.
func (s *scenario) enableStandby() {
	s.t.Helper()
	config, err := os.ReadFile(s.config)
	if err != nil {
		s.t.Fatal(err)
	}
	config = append(config, "\nstandby:\n  enabled: true\n"...)
	if err := os.WriteFile(s.config, config, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// leader waits until exactly one of the running instances leads, and
// returns it.
func (s *scenario) leader(instances ...*harness.Daemon) *harness.Daemon {
	s.t.Helper()
	var leader *harness.Daemon
	var states []string
	err := harness.Eventually(60*time.Second, func() (bool, error) {
		leader, states = nil, nil
		leading := 0
		for _, d := range instances {
			if d.Exited() {
				continue
			}
			addr, err := d.MetricsAddress(10 * time.Second)
			if err != nil {
				return false, err
			}
			m := scrape(s.t, addr)
			states = append(states, fmt.Sprintf("pid %d: cdc_leader %v", d.Pid(), m["cdc_leader"]))
			if m["cdc_leader"] == 1 {
				leader = d
				leading++
			}
		}
		return leading == 1, nil
	})
	if err != nil {
		s.t.Fatalf("no single leader among the instances (%s): %v", strings.Join(states, "; "), err)
	}
	return leader
}

func without(instances []*harness.Daemon, d *harness.Daemon) []*harness.Daemon {
	var out []*harness.Daemon
	for _, i := range instances {
		if i != d {
			out = append(out, i)
		}
	}
	return out
}

// Two, then three instances: the leader is killed (SIGKILL) under the
// workload, again and again; each time a standby takes over from the stored
// checkpoint, and a new instance joins as a standby. Nothing is lost, and
// nothing is sent twice to a read-committed consumer (the leader's producer
// is transactional, in both delivery modes).
func TestStandbyTakesOverFromAKilledLeader(t *testing.T) {
	for _, mode := range []string{"at_least_once", "exactly_once"} {
		t.Run(mode, func(t *testing.T) {
			forEachSource(t, func(t *testing.T, s *scenario) {
				if mode == "exactly_once" {
					s.editConfig("exactly_once: false", "exactly_once: true")
				}
				s.enableStandby()
				s.exec(s.bulk(1000))
				instances := []*harness.Daemon{s.start()}
				s.waitCustomersMatch()
				instances = append(instances, s.start(), s.start())
				w := s.startWorkload(1000)
				for range 3 {
					leader := s.leader(instances...)
					time.Sleep(time.Second) // it writes
					leader.Kill()
					instances = append(without(instances, leader), s.start())
					s.leader(instances...)
				}
				t.Log(s.nothingLost(w, true))
				records := s.waitCustomersMatch()
				checkValuesRise(t, s.customer, records, "balance", repeatsAllowed) // an update of the email repeats the balance
			})
		})
	}
}

// A leader paused (SIGSTOP) past its session: a standby takes over; when the
// old leader wakes (SIGCONT), its producer is fenced, so no record of it
// lands after the new leader's, and it stands by or stops with the reason.
func TestPausedLeaderWritesNothingAfterTheTakeover(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		s.enableStandby()
		s.exec(s.bulk(1000))
		first := s.start()
		s.waitCustomersMatch()
		second := s.start()
		if s.leader(first, second) != first {
			t.Fatal("the first instance does not lead")
		}
		w := s.startWorkload(1000)
		time.Sleep(time.Second)
		if err := syscall.Kill(first.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		if s.leader(second) != second {
			t.Fatal("the standby does not take over")
		}
		time.Sleep(3 * time.Second) // the new leader writes
		if err := syscall.Kill(first.Pid(), syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // the old one wakes, and writes if it can
		if !first.Exited() {
			if addr, err := first.MetricsAddress(10 * time.Second); err == nil && scrape(t, addr)["cdc_leader"] == 1 {
				t.Errorf("the paused leader still leads after its session expired:\n%s", first.Logs())
			}
		} else if logs := first.Logs(); !strings.Contains(logs, "transactional id") {
			t.Errorf("the paused leader stopped without saying it was fenced:\n%s", logs)
		}
		for _, line := range strings.Split(first.Logs(), "\n") {
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "component=standby") {
				t.Logf("paused leader: %s", line)
			}
		}
		s.daemons = without(s.daemons, first) // its end is checked above
		t.Log(s.nothingLost(w, true))
		records := s.waitCustomersMatch()
		checkValuesRise(t, s.customer, records, "balance", repeatsAllowed) // an update of the email repeats the balance
	})
}

// The brokers restart while a standby takes over from a killed leader: the
// group's coordinator comes back, the standby leads, and nothing is lost or
// sent twice.
func TestBrokerRestartDuringATakeover(t *testing.T) {
	forEachSource(t, func(t *testing.T, s *scenario) {
		broker := s.useRestartableBroker()
		s.enableStandby()
		s.exec(s.bulk(1000))
		instances := []*harness.Daemon{s.start()}
		s.waitCustomersMatch()
		instances = append(instances, s.start())
		w := s.startWorkload(1000)
		leader := s.leader(instances...)
		time.Sleep(time.Second)
		leader.Kill()
		broker.restart(2 * time.Second)
		instances = append(without(instances, leader), s.start())
		s.leader(instances...)
		t.Log(s.nothingLost(w, true))
	})
}
