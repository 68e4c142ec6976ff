// Command cdc publishes the rows of a legacy database as entity events: keyed
// Avro records in compacted Kafka topics, following the database's change log.
//
//	cdc run --config cdc.yaml        snapshot (per snapshot.mode), then stream
//	cdc snapshot --config cdc.yaml   backfill the topics, then exit (cdc run streams on)
//	cdc validate --config cdc.yaml   check configuration, mappings, database and topics
//	cdc catalog --config cdc.yaml    print the mapped tables as the database describes them
//	cdc verify --config cdc.yaml     compare each entity topic with its table
//	cdc tail --config cdc.yaml --entity customer   print an entity topic as JSON lines
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startCPUProfile(os.Getenv("CDC_CPU_PROFILE"))
	writeAllocs := recordAllocs(os.Getenv("CDC_ALLOCS_PROFILE"))
	err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	writeAllocs()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "cdc:", err)
		os.Exit(1)
	}
}

// startCPUProfile writes a CPU profile of the whole run to the file named by
// CDC_CPU_PROFILE, for `go tool pprof` (make bench uses it to find costs).
func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cdc: CDC_CPU_PROFILE:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// recordAllocs samples allocations for the profile written, when the returned
// func is called, to the file named by CDC_ALLOCS_PROFILE (make bench uses it
// to find what keeps the garbage collector busy).
func recordAllocs(path string) (write func()) {
	if path == "" {
		return func() {}
	}
	runtime.MemProfileRate = 64 << 10
	return func() {
		f, err := os.Create(path)
		if err == nil {
			err = errors.Join(pprof.Lookup("allocs").WriteTo(f, 0), f.Close())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "cdc: CDC_ALLOCS_PROFILE:", err)
		}
	}
}

// errUsage is returned after the usage has been printed.
var errUsage = errors.New("usage")

const usage = `cdc publishes the rows of a database as entity events in compacted Kafka topics.

Usage:
  cdc run      --config FILE                  snapshot (per snapshot.mode), then stream changes
  cdc snapshot --config FILE [--entity NAME]  backfill the topics from the tables, store where streaming starts, exit
  cdc validate --config FILE [--catalog F] [--against REV]
                                              check everything cdc run would check, and list every problem
                                              (--catalog: the mappings against a catalog file, no database;
                                              --against: the schema files against a git revision's)
  cdc catalog  --config FILE                  print the mapped tables as the database describes them (JSON)
  cdc check-migration --config FILE --catalog F FILE.sql...
                                              say what each statement of migrations does to each entity
  cdc verify   --config FILE [--entity NAME]  compare each entity topic, materialized, with its table's current rows
  cdc tail     --config FILE --entity NAME    print an entity topic as JSON lines (--follow, --headers)
  cdc version

Exit status: 0 on success or after a clean stop (SIGINT, SIGTERM), 1 on an error (verify: on any
difference), 2 on a usage error.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Run runs one cdc command; main only maps its error to an exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], stderr)
	case "snapshot":
		return snapshotCommand(ctx, args[1:], stderr)
	case "check-migration":
		return checkMigrationCommand(ctx, args[1:], stdout, stderr)
	case "catalog":
		return catalogCommand(ctx, args[1:], stdout, stderr)
	case "validate":
		return validateCommand(ctx, args[1:], stdout, stderr)
	case "verify":
		return verifyCommand(ctx, args[1:], stdout, stderr)
	case "tail":
		return tailCommand(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "cdc", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "cdc: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}
