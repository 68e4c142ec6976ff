package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter tells, over one stage, how busy the machine's cores were and who
// kept them busy: on a small shared machine the daemon, the broker (in this
// process) and the database compete for the same cores, and a rate is only
// understood with its CPU budget.
type cpuMeter struct {
	pid                    int
	start                  time.Time
	machine, daemon, bench float64 // CPU seconds at the start
}

// userHz is the unit of /proc's CPU times: 100 on every Linux this runs on.
const userHz = 100

func startCPU(pid int) *cpuMeter {
	return &cpuMeter{pid: pid, start: time.Now(), machine: machineBusy(), daemon: processCPU(pid), bench: selfCPU()}
}

// cpuUse is where the CPU went during a stage.
type cpuUse struct {
	withDaemon                     bool // else the bench read alone
	cores                          int
	machine, daemon, bench, others float64 // cores busy on average
	daemonRow, benchRow, othersRow float64 // CPU µs per row
}

func (u cpuUse) String() string {
	return fmt.Sprintf("cores busy %.1f of %d: daemon %.1f, broker and bench %.1f, database and others %.1f; CPU per row: daemon %.2f µs, broker and bench %.2f µs, database and others %.2f µs",
		u.machine, u.cores, u.daemon, u.bench, u.others, u.daemonRow, u.benchRow, u.othersRow)
}

// stop returns the stage's use for n rows; call it while the daemon still
// runs. CPU time per row is the figure that noise moves least: it does not
// count the time a process waited for a core.
func (m *cpuMeter) stop(n int) cpuUse {
	wall := time.Since(m.start).Seconds()
	machine := machineBusy() - m.machine
	daemon := processCPU(m.pid) - m.daemon
	bench := selfCPU() - m.bench
	others := max(machine-daemon-bench, 0)
	perRow := func(seconds float64) float64 { return seconds / float64(n) * 1e6 }
	return cpuUse{withDaemon: m.pid != 0, cores: runtime.NumCPU(), machine: machine / wall, daemon: daemon / wall, bench: bench / wall, others: others / wall,
		daemonRow: perRow(daemon), benchRow: perRow(bench), othersRow: perRow(others)}
}

// machineBusy is the CPU seconds every core spent not idle since boot.
func machineBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy float64
	for i, f := range fields[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseFloat(f, 64)
		busy += n
	}
	return busy / userHz
}

// processCPU is the CPU seconds (user and system) of a process so far.
func processCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// After the command name, which may hold spaces: state is field 3,
	// utime and stime fields 14 and 15.
	i := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / userHz
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
