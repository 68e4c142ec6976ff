package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cdc-dev/cdc/internal/memory"
)

// BuildCDC builds the cdc command into dir and returns the binary's path. A
// test binary built with the cdcguard tag builds a guarded daemon (see
// memory.Guarded).
func BuildCDC(dir string) (string, error) {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	bin := filepath.Join(dir, "cdc")
	args := []string{"build", "-o", bin}
	if memory.Guarded {
		args = append(args, "-tags", "cdcguard")
	}
	cmd := exec.Command("go", append(args, "./cmd/cdc")...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/cdc: %v\n%s", err, out)
	}
	return bin, nil
}

// Daemon is a cdc process.
type Daemon struct {
	cmd  *exec.Cmd
	logs lockedBuffer
	done chan struct{}
	err  error
}

// StartDaemon starts `bin args...` with extra environment variables. Its
// metrics endpoint listens on a free port (CDC_HTTP_LISTEN, which the example
// configurations read), so that daemons run side by side; MetricsAddress
// tells which.
func StartDaemon(bin string, env []string, args ...string) (*Daemon, error) {
	d := &Daemon{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	d.cmd.Env = append(append(os.Environ(), "CDC_HTTP_LISTEN=127.0.0.1:0"), env...)
	d.cmd.Stdout, d.cmd.Stderr = &d.logs, &d.logs
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (d *Daemon) Kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// Dump ends a hung process with SIGQUIT, on which the Go runtime writes the
// stacks of all its goroutines to the logs, and waits for it.
func (d *Daemon) Dump() {
	_ = d.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		d.Kill()
	}
}

// Stop asks the process to stop with SIGTERM and returns its exit error.
func (d *Daemon) Stop(timeout time.Duration) error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		d.Kill()
		return fmt.Errorf("did not stop within %s after SIGTERM", timeout)
	}
}

// Wait waits for the process to exit by itself and returns its exit error.
func (d *Daemon) Wait(timeout time.Duration) error {
	if d.Exited() {
		return d.err
	}
	select {
	case <-d.done:
		return d.err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %s", timeout)
	}
}

// Exited reports whether the process has ended.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Logs returns everything the process wrote so far.
func (d *Daemon) Logs() string { return d.logs.String() }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Pid is the process id, for measurements of the process.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// MetricsAddress waits until the daemon logs where it serves /metrics, and
// returns that host:port.
func (d *Daemon) MetricsAddress(timeout time.Duration) (string, error) {
	var addr string
	err := Eventually(timeout, func() (bool, error) {
		for line := range strings.Lines(d.Logs()) {
			if !strings.Contains(line, "serving /metrics") {
				continue
			}
			if _, rest, ok := strings.Cut(line, "address="); ok {
				addr = strings.Trim(strings.Fields(rest)[0], `"`)
				return true, nil
			}
		}
		if d.Exited() {
			return false, fmt.Errorf("the daemon exited: %s", d.Logs())
		}
		return false, errors.New("no metrics address logged yet")
	})
	return addr, err
}
