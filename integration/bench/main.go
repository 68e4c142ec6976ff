// Command bench measures cdc end to end against the floor of what its libraries
// can do on the same machine, in the same run, and prints one table per source:
//
//  1. snapshot: rows/s of the daemon's initial snapshot into the broker, against
//     a plain read of the table with the same driver (COPY TO STDOUT; SELECT),
//     and against a read of the same queries as the snapshot's (chunks in key
//     order, which let it resume);
//  2. backlog drain: events/s of the daemon catching up on row changes written
//     while it was stopped, against a bare loop that reads and decodes the same
//     log with the same library (pglogrepl; go-mysql's BinlogSyncer) and, on
//     PostgreSQL, against pg_recvlogical;
//  3. latency: commit to broker at a steady rate of single-row transactions;
//  4. memory: the daemon's peak RSS during (2), during one transaction of
//     every row, and during a snapshot of 3,000 rows of 100 KB.
//
// A fifth floor, the rate of cdc's producer alone sending the snapshot's
// records again (no database, no mapping), bounds every rate of the daemon.
//
// Timings are printed, never asserted: the machine is shared and noisy, so the
// ratios (measured in the same run) are the figures to compare.
//
// With -repeat N, each source is measured N times from scratch (new database,
// new broker) and a last table gives each figure's median and range.
//
// With -figures FILE, the tables are also written to FILE as Markdown, with
// the date, the machine and the command: make bench keeps
// docs/performance-figures.md so.
//
//	go run ./integration/bench -cdc bin/cdc [-rows 1000000] [-source postgres,mysql] [-parallelism 1] [-compression lz4] [-until snapshot] [-repeat 3] [-figures FILE]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cdc-dev/cdc/integration/harness"
)

func main() {
	bin := flag.String("cdc", "bin/cdc", "the cdc binary")
	rows := flag.Int("rows", 1_000_000, "rows of the generated table, and row changes of the backlog")
	sources := flag.String("source", "postgres,mysql", "sources to measure")
	rate := flag.Int("rate", 1000, "transactions per second of the latency measurement")
	seconds := flag.Int("seconds", 10, "duration of the latency measurement")
	parallelism := flag.Int("parallelism", 1, "snapshot.parallelism of the daemon's snapshot")
	compression := flag.String("compression", "", "kafka.compression of the daemon and of the producer floor (the daemon's default if empty)")
	headers := flag.String("headers", "", "kafka.headers of the daemon (full or compact; the daemon's default if empty)")
	profiles := flag.String("cpuprofile", "", "write the daemon's CPU and allocation profiles to this `directory`, one per source and stage")
	until := flag.String("until", "transaction", "the last `stage` to run, each needing the ones before it: snapshot, drain or transaction")
	repeat := flag.Int("repeat", 1, "measure each source this many times, then print each figure's median and range")
	takeovers := flag.Int("takeovers", 5, "kill the leader of two instances (standby.enabled) this many times, and measure the takeovers (PostgreSQL; 0: none)")
	figures := flag.String("figures", "", "also write the results, with the date, the machine and the command, as Markdown to this `file`")
	micro := flag.String("micro", "", "with -figures, a `file` of go test -bench output to add to the page")
	flag.Parse()
	if !slices.Contains([]string{"snapshot", "drain", "transaction"}, *until) {
		fmt.Fprintf(os.Stderr, "bench: -until %q: want snapshot, drain or transaction\n", *until)
		os.Exit(2)
	}
	if *repeat < 1 {
		fmt.Fprintf(os.Stderr, "bench: -repeat %d: want 1 or more runs\n", *repeat)
		os.Exit(2)
	}
	started := time.Now()
	b := &bench{bin: *bin, rows: *rows, rate: *rate, duration: time.Duration(*seconds) * time.Second, profiles: *profiles, takeovers: *takeovers,
		parallelism: *parallelism, compression: *compression, headers: *headers, until: *until}
	for _, src := range strings.Split(*sources, ",") {
		var runs []*table
		for range *repeat {
			t, err := b.run(src)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench %s: %v\n", src, err)
				os.Exit(1)
			}
			t.print()
			runs = append(runs, t)
		}
		if len(runs) > 1 {
			printSummary(src, runs)
		}
	}
	if *figures != "" {
		if err := writeFigures(*figures, *micro, started); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
	}
}

// results is where the tables are printed: stdout, and a copy for -figures.
var (
	printed bytes.Buffer
	results = io.MultiWriter(os.Stdout, &printed)
)

// writeFigures writes the tables printed so far as a Markdown page, with what
// a reader needs to weigh them: when, on what machine, by which command.
func writeFigures(path, micro string, started time.Time) error {
	var page strings.Builder
	page.WriteString("# Measured figures\n\n")
	page.WriteString("<!-- Written by `make bench` (integration/bench -figures); edit the bench, not this page. -->\n\n")
	fmt.Fprintf(&page, "- date: %s (%s of measuring)\n", started.UTC().Format("2006-01-02 15:04 MST"), time.Since(started).Round(time.Minute))
	fmt.Fprintf(&page, "- machine: %s\n", machine())
	fmt.Fprintf(&page, "- command: `go run ./integration/bench %s` (Go %s)\n", strings.Join(os.Args[1:], " "), runtime.Version())
	page.WriteString("- database and broker (kfake, in the bench's process) run on the same machine; how to read the figures: [performance.md](performance.md)\n\n")
	page.WriteString("## End to end\n\n```\n")
	page.Write(printed.Bytes())
	page.WriteString("```\n")
	if micro != "" {
		text, err := os.ReadFile(micro)
		if err != nil {
			return err
		}
		page.WriteString("\n## Go benchmarks of the hot path\n\n`go test -run '^$' -bench . -benchmem` over the unit packages, in the same run:\n\n```\n")
		for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
			if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "pkg:") {
				page.WriteString(line + "\n")
			}
		}
		page.WriteString("```\n")
	}
	return os.WriteFile(path, []byte(page.String()), 0o644)
}

// machine describes the CPU, cores, memory and kernel.
func machine() string {
	model := "unknown CPU"
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	memory := ""
	if info, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(info), "MemTotal: %d kB", &kb); err == nil {
			memory = fmt.Sprintf(", %.1f GB of memory", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if release, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(release))
	}
	return fmt.Sprintf("%s, %d cores%s%s", model, runtime.NumCPU(), memory, kernel)
}

type bench struct {
	profiles    string
	until       string
	parallelism int
	compression string
	headers     string // kafka.headers
	bin         string
	rows        int
	rate        int
	duration    time.Duration
	takeovers   int
}

// database is what the bench needs of one source.
type database interface {
	// load creates the bench table with n rows.
	load(ctx context.Context, n int) error
	// plainRead reads the whole table with the driver and discards it.
	plainRead(ctx context.Context) (int, error)
	// keyOrderedRead reads it as cdc's snapshot does by default, in chunks in
	// key order (which lets a snapshot resume), and discards it.
	keyOrderedRead(ctx context.Context) (int, error)
	// markLog notes the log's position, from where floorDrain reads.
	markLog(ctx context.Context) error
	// update changes every row once, in transactions of batch rows (0: one).
	update(ctx context.Context, batch int) error
	// writeOutbox inserts n rows into the outbox table, in transactions of
	// batch rows: rows of item as JSON payloads of route Item.
	writeOutbox(ctx context.Context, n, batch int) error
	// floorDrain reads and decodes the log from the mark until n row changes.
	floorDrain(ctx context.Context, n int) error
	// extraFloors measures other readers of the same backlog (name → events/s).
	extraFloors(ctx context.Context, n int) (map[string]float64, error)
	// insertOne commits one row with the given id.
	insertOne(ctx context.Context, id int64) error
	// insertRows commits n rows, their ids from first on, in one transaction.
	insertRows(ctx context.Context, first int64, n int) error
	// loadWide creates the table wide_item with n rows of an id and a text
	// of width bytes.
	loadWide(ctx context.Context, n, width int) error
	// logBytes is how much log the server has written so far.
	logBytes(ctx context.Context) (int64, error)
	// logLess sets the setting that logs less than whole rows on the bench
	// table (PostgreSQL: REPLICA IDENTITY DEFAULT; MariaDB: binlog_row_image
	// MINIMAL, for the server and the bench's session), or back to whole rows.
	logLess(ctx context.Context, less bool) error
	// lessName names that setting.
	lessName() string
	// sourceConfig is the source section of cdc's configuration.
	sourceConfig() string
	// schema is where the bench's tables are (database or schema name).
	schema() string
	// exec runs statements, one after the other, on the bench's session.
	exec(ctx context.Context, statements ...string) error
	// series is a derived table s of one column n, from..to.
	series(from, to int) string
	env() []string
	close()
}

// row is about 150 bytes: bigint key, text, numeric, int, timestamp, text.
const benchSchema = `{"type": "record", "name": "Item", "namespace": "bench.v1", "fields": [
  {"name": "id", "type": "long"},
  {"name": "name", "type": "string"},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
  {"name": "qty", "type": "int"},
  {"name": "created_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "note", "type": ["null", "string"], "default": null}]}`

// benchTopic is the topic of the bench's entity.
const benchTopic = "bench.item.v1"

const benchEntity = `
entities:
  - name: item
    table: %[1]s.item
    topic: ` + benchTopic + `
    schema: %[2]s
    key: [id]
    fields: {id: id, name: name, price: price, qty: qty, created_at: created_at, note: note}
  - name: events
    table: %[1]s.outbox
    outbox: {routes: {Item: {topic: ` + outboxTopic + `, schema: %[2]s}}}
`

// outboxTopic is the topic of the bench's outbox route: the item table's rows
// again, written as JSON payloads by the bench into an outbox table, encoded
// by the daemon with the same schema.
const outboxTopic = "bench.item_events.v1"

// configText is cdc's configuration of connector name, reading entities (of
// benchEntity's form) from db.
func configText(name string, db database, entities string) string {
	return "name: " + name + "\n" + db.sourceConfig() + `
kafka: {brokers: ["${KAFKA_BROKERS}"], topic: {partitions: 3}, compression: "${KAFKA_COMPRESSION:-}", headers: "${KAFKA_HEADERS:-}"}
http: {listen: "${CDC_HTTP_LISTEN}"}
` + entities
}

// Wide rows: documents of 100 KB, whose memory in flight the daemon must
// bound by bytes, not by rows.
const (
	wideRows, wideWidth = 3000, 100_000
	wideSchema          = `{"type": "record", "name": "Document", "namespace": "bench.v1", "fields": [
  {"name": "id", "type": "long"}, {"name": "doc", "type": "string"}]}`
	wideEntity = `
entities:
  - name: document
    table: %s.wide_item
    topic: bench.document.v1
    schema: %s
    key: [id]
    fields: {id: id, doc: doc}
`
)

// wideSnapshot takes a snapshot of wide rows with `cdc snapshot` under its
// own connector name, and returns its peak RSS.
func (b *bench) wideSnapshot(ctx context.Context, db database, dir string, env []string) (int64, error) {
	if err := db.loadWide(ctx, wideRows, wideWidth); err != nil {
		return 0, fmt.Errorf("load the wide table: %w", err)
	}
	schema := filepath.Join(dir, "document.avsc")
	if err := os.WriteFile(schema, []byte(wideSchema), 0o644); err != nil {
		return 0, err
	}
	path := filepath.Join(dir, "wide.yaml")
	if err := os.WriteFile(path, []byte(configText("bench_wide", db, fmt.Sprintf(wideEntity, db.schema(), schema))), 0o644); err != nil {
		return 0, err
	}
	return b.runCommand(env, "snapshot", "--config", path)
}

// startDaemon runs `cdc run`, profiled when asked.
func (b *bench) startDaemon(env []string, config, source, stage string) (*harness.Daemon, error) {
	if b.profiles != "" {
		env = append(env, "CDC_CPU_PROFILE="+filepath.Join(b.profiles, source+"-"+stage+".pprof"),
			"CDC_ALLOCS_PROFILE="+filepath.Join(b.profiles, source+"-"+stage+".allocs.pprof"))
	}
	return harness.StartDaemon(b.bin, env, "run", "--config", config)
}

// warmBrokerMemory touches memory that the broker, in this process, then
// stores the daemon's records in. On the bench machine a page the process
// touches for the first time costs about 10 µs (the virtual machine's host
// backs its memory on first use), and the broker grows by up to 200 MB per
// million records: the first run of a bench process paid 0.9–1.0 µs of the
// broker's CPU per snapshot row, the runs after it, which reuse memory the
// ones before freed, 0.3–0.4. Touched before each stage of the daemon, the
// broker costs every run the same, as a broker on other machines would.
func warmBrokerMemory() {
	memory := make([]byte, 1<<30)
	for i := 0; i < len(memory); i += os.Getpagesize() {
		memory[i] = 1
	}
	runtime.KeepAlive(memory)
	runtime.GC() // free, but kept by the runtime for the next allocations
}

// verify runs cdc verify, which must find the topic equal to the table, and
// returns its peak RSS.
func (b *bench) verify(env []string, config string) (int64, error) {
	return b.runCommand(append(env, "CDC_HTTP_LISTEN=off"), "verify", "--config", config)
}

// runCommand runs a cdc command that ends by itself, and returns its peak RSS
// (VmHWM, sampled: getrusage's maxrss would carry the bench's own, inherited
// across fork and exec).
func (b *bench) runCommand(env []string, args ...string) (int64, error) {
	d, err := harness.StartDaemon(b.bin, env, args...)
	if err != nil {
		return 0, err
	}
	peak := watchRSS(d)
	err = d.Wait(10 * time.Minute)
	rss := peak()
	if err != nil {
		return 0, fmt.Errorf("cdc %s: %v\n%s", args[0], err, d.Logs())
	}
	return rss, nil
}

// progress says what the bench is doing, on stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "  [%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// run measures the stages on a new database and broker.
func (b *bench) run(source string) (*table, error) {
	ctx := context.Background()
	fmt.Fprintf(results, "== %s: %d rows of about 150 bytes", source, b.rows)
	if b.compression != "" {
		fmt.Fprintf(results, ", kafka.compression %s", b.compression)
	}
	if b.headers != "" {
		fmt.Fprintf(results, ", kafka.headers %s", b.headers)
	}
	fmt.Fprintln(results)
	var db database
	var err error
	switch source {
	case "postgres":
		db, err = startPostgres(ctx)
	case "mysql":
		db, err = startMariaDB()
	default:
		return nil, fmt.Errorf("unknown source %q", source)
	}
	if err != nil {
		return nil, err
	}
	defer db.close()
	kafka, err := harness.StartKafka(0, "")
	if err != nil {
		return nil, err
	}
	defer kafka.Close()
	brokers := kafka.ListenAddrs()
	// Metadata may be refreshed often: the topic appears after the first
	// lookups, and the default minimum age (5 s) would be counted as the daemon's.
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	dir, err := os.MkdirTemp("", "cdcbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "item.avsc"), []byte(benchSchema), 0o644); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "cdc.yaml")
	text := configText("bench", db, fmt.Sprintf(benchEntity, db.schema(), filepath.Join(dir, "item.avsc")))
	if b.parallelism > 1 {
		text += fmt.Sprintf("snapshot: {parallelism: %d}\n", b.parallelism)
	}
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		return nil, err
	}
	env := append(db.env(), "KAFKA_BROKERS="+strings.Join(brokers, ","), "KAFKA_COMPRESSION="+b.compression, "KAFKA_HEADERS="+b.headers)
	t := &table{}

	progress("loading the table")
	if err := db.load(ctx, b.rows); err != nil {
		return nil, err
	}
	start := time.Now()
	progress("plain read")
	cpu := startCPU(0) // the bench reads: no daemon
	n, err := db.plainRead(ctx)
	if err != nil {
		return nil, err
	}
	floor := float64(n) / time.Since(start).Seconds()
	t.cpu("plain read", cpu.stop(n))
	start = time.Now()
	progress("key-ordered read")
	cpu = startCPU(0)
	if n, err = db.keyOrderedRead(ctx); err != nil {
		return nil, err
	} else if n != b.rows {
		return nil, fmt.Errorf("the key-ordered read found %d rows of %d", n, b.rows)
	}
	orderedFloor := float64(n) / time.Since(start).Seconds()
	t.cpu("ordered read", cpu.stop(n))

	warmBrokerMemory()
	start = time.Now()
	progress("snapshot by the daemon")
	d, err := b.startDaemon(env, config, source, "snapshot")
	if err != nil {
		return nil, err
	}
	cpu = startCPU(d.Pid())
	if err := waitRecords(ctx, admin, d, int64(b.rows), 10*time.Minute); err != nil {
		return nil, err
	}
	snapshot := float64(b.rows) / time.Since(start).Seconds()
	t.cpu("snapshot", cpu.stop(b.rows))
	for line := range strings.Lines(d.Logs()) {
		progress("daemon: %s", strings.TrimSpace(line))
	}
	snapshotName := "cdc run (initial snapshot)"
	if b.parallelism > 1 {
		snapshotName = fmt.Sprintf("cdc run (initial snapshot, %d workers)", b.parallelism)
	}
	t.add("snapshot", snapshotName, snapshot, "plain read", floor)
	progress("producer alone")
	sinkRate, sinkCPU, err := sinkFloor(ctx, brokers, b.compression)
	if err != nil {
		return nil, err
	}
	t.cpu("producer alone", sinkCPU)
	t.add("snapshot", snapshotName, snapshot, "key-ordered read", orderedFloor)
	t.add("snapshot", snapshotName, snapshot, "producer alone", sinkRate)
	if err := d.Stop(time.Minute); err != nil {
		return nil, fmt.Errorf("stop after the snapshot: %v\n%s", err, d.Logs())
	}
	progress("cdc verify of the snapshot")
	start = time.Now()
	verifyRSS, err := b.verify(env, config)
	if err != nil {
		return nil, err
	}
	t.add("verify", "cdc verify (topic vs table)", float64(b.rows)/time.Since(start).Seconds(), "plain read", floor)
	t.figure(fmt.Sprintf("peak RSS of cdc verify over %d rows", b.rows), float64(verifyRSS>>20), "MB")
	if b.until == "snapshot" {
		return t, nil
	}

	if err := db.markLog(ctx); err != nil {
		return nil, err
	}
	progress("writing the backlog")
	logStart, err := db.logBytes(ctx)
	if err != nil {
		return nil, err
	}
	if err := db.update(ctx, 1000); err != nil {
		return nil, err
	}
	logEnd, err := db.logBytes(ctx)
	if err != nil {
		return nil, err
	}
	fullLog := logEnd - logStart
	start = time.Now()
	progress("bare decode loop")
	if err := db.floorDrain(ctx, b.rows); err != nil {
		return nil, err
	}
	floor = float64(b.rows) / time.Since(start).Seconds()
	progress("other floors")
	extra, err := db.extraFloors(ctx, b.rows)
	if err != nil {
		return nil, err
	}
	warmBrokerMemory()
	start = time.Now()
	d, err = b.startDaemon(env, config, source, "drain")
	if err != nil {
		return nil, err
	}
	peak := watchRSS(d)
	cpu = startCPU(d.Pid())
	if err := waitRecords(ctx, admin, d, int64(2*b.rows), 10*time.Minute); err != nil {
		return nil, err
	}
	drain := float64(b.rows) / time.Since(start).Seconds()
	drainRSS := peak()
	t.cpu("backlog drain", cpu.stop(b.rows))
	t.figure("peak RSS of the daemon during the backlog drain", float64(drainRSS>>20), "MB")
	t.add("backlog drain", "cdc run (catching up)", drain, "bare decode loop", floor)
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		t.add("backlog drain", "cdc run (catching up)", drain, name, extra[name])
	}
	if err := d.Stop(time.Minute); err != nil {
		return nil, fmt.Errorf("stop after the drain: %v\n%s", err, d.Logs())
	}
	if source == "postgres" {
		if err := b.textDrain(ctx, t, db, env, dir, admin, drain); err != nil {
			return nil, err
		}
	}
	if err := b.outbox(ctx, t, db, env, config, source, admin, drain); err != nil {
		return nil, err
	}
	if err := b.logLess(ctx, t, db, env, config, source, admin, fullLog, drain); err != nil {
		return nil, err
	}
	if err := b.aggregate(ctx, t, db, env, dir, source, admin, drain); err != nil {
		return nil, err
	}
	if b.until == "drain" {
		return t, nil
	}

	if d, err = b.startDaemon(env, config, source, "latency"); err != nil {
		return nil, err
	}
	// Streaming before the first measured insert: a warm-up row arrives.
	if before, err := endOffsets(ctx, admin); err != nil {
		return nil, err
	} else if err := db.insertOne(ctx, 150_000_000); err != nil {
		return nil, err
	} else if err := waitRecords(ctx, admin, d, before+1, time.Minute); err != nil {
		return nil, err
	}
	progress("latency")
	p50, p99, achieved, err := b.latency(ctx, db, brokers, d, 100_000_000, b.rate, 1)
	if err != nil {
		return nil, err
	}
	// Ten times the load, as a busy application writes it: transactions of 10 rows.
	progress("latency at ten times the load")
	busyRate := 10 * b.rate
	busyP50, busyP99, busyAchieved, err := b.latency(ctx, db, brokers, d, 110_000_000, busyRate, 10)
	if err != nil {
		return nil, err
	}
	if err := d.Stop(time.Minute); err != nil {
		return nil, fmt.Errorf("stop after the latency run: %v\n%s", err, d.Logs())
	}

	if err := b.largeTransaction(ctx, t, db, env, config, source, admin, ""); err != nil {
		return nil, err
	}
	if source == "postgres" {
		if err := b.largeTransaction(ctx, t, db, env, config, source, admin, "streaming: false"); err != nil {
			return nil, err
		}
	}
	progress("snapshot of wide rows")
	wideRSS, err := b.wideSnapshot(ctx, db, dir, env)
	if err != nil {
		return nil, err
	}
	t.figure(fmt.Sprintf("peak RSS of cdc snapshot over %d rows of %d KB", wideRows, wideWidth/1000), float64(wideRSS>>20), "MB")
	// From the commit's return to the record readable from the broker.
	latency := fmt.Sprintf("latency, commit to broker, at %d tx/s for %s,", b.rate, b.duration)
	t.figure(latency+" transactions/s achieved", achieved, "/s")
	t.figure(latency+" p50", float64(p50.Microseconds())/1000, "ms")
	t.figure(latency+" p99", float64(p99.Microseconds())/1000, "ms")
	busy := fmt.Sprintf("latency, commit to broker, at %d changes/s in transactions of 10 for %s,", busyRate, b.duration)
	t.figure(busy+" changes/s achieved", busyAchieved, "/s")
	t.figure(busy+" p50", float64(busyP50.Microseconds())/1000, "ms")
	t.figure(busy+" p99", float64(busyP99.Microseconds())/1000, "ms")
	if b.takeovers > 0 && source == "postgres" {
		if err := b.takeover(ctx, t, db, env, config, source); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// largeTransaction updates every row in one transaction under a running
// daemon, its source configured with the given postgres settings ("": the
// defaults), and measures the time from the commit to the last record
// acknowledged, the daemon's peak RSS and, on PostgreSQL, what the server
// streamed and spilled to its disk for it.
func (b *bench) largeTransaction(ctx context.Context, t *table, db database, env []string, config, source string, admin *kadm.Client, settings string) error {
	what := fmt.Sprintf("one transaction of %d rows", b.rows)
	if settings != "" {
		text, err := os.ReadFile(config)
		if err != nil {
			return err
		}
		config = strings.TrimSuffix(config, ".yaml") + "-" + strings.Fields(settings)[0] + ".yaml"
		edited := strings.Replace(string(text), `dsn: "${BENCH_DSN}"}`, `dsn: "${BENCH_DSN}", postgres: {`+settings+`}}`, 1)
		if err := os.WriteFile(config, []byte(edited), 0o644); err != nil {
			return err
		}
		what += " (" + settings + ")"
	}
	d, err := b.startDaemon(env, config, source, "transaction")
	if err != nil {
		return err
	}
	peak := watchRSS(d)
	before, err := endOffsets(ctx, admin)
	if err != nil {
		return err
	}
	pg, _ := db.(*postgres)
	var server slotStats
	if pg != nil {
		if server, err = pg.slotStats(ctx); err != nil {
			return err
		}
	}
	progress("%s", what)
	if err := db.update(ctx, 0); err != nil {
		return err
	}
	committed := time.Now()
	if err := waitRecords(ctx, admin, d, before+int64(b.rows), 10*time.Minute); err != nil {
		return err
	}
	commitToAck := time.Since(committed)
	rss := peak()
	if err := d.Stop(time.Minute); err != nil {
		return fmt.Errorf("stop after the large transaction: %v\n%s", err, d.Logs())
	}
	t.figure("peak RSS of the daemon during "+what, float64(rss>>20), "MB")
	t.figure(what+": commit to the last record acknowledged", commitToAck.Seconds(), "s")
	if pg != nil {
		after, err := pg.slotStats(ctx)
		if err != nil {
			return err
		}
		t.figure(what+": bytes the server streamed before the commit", float64(after.streamBytes-server.streamBytes)/(1<<20), "MB")
		t.figure(what+": bytes the server spilled to its disk", float64(after.spillBytes-server.spillBytes)/(1<<20), "MB")
	}
	return nil
}

// takeover runs two instances of the connector (standby.enabled) under a
// steady insert load, kills the leader (SIGKILL) b.takeovers times, starting
// a new standby after each kill, and measures the time from each kill to
// the first record the new leader has acknowledged.
func (b *bench) takeover(ctx context.Context, t *table, db database, env []string, config, source string) error {
	text, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	standby := filepath.Join(filepath.Dir(config), "standby.yaml")
	if err := os.WriteFile(standby, append(text, "\nstandby: {enabled: true}\n"...), 0o644); err != nil {
		return err
	}
	var instances []*harness.Daemon
	defer func() {
		for _, d := range instances {
			d.Kill()
		}
	}()
	start := func() error {
		d, err := b.startDaemon(env, standby, source, fmt.Sprintf("takeover-%d", len(instances)))
		if err == nil {
			instances = append(instances, d)
		}
		return err
	}
	if err := start(); err != nil {
		return err
	}
	if err := start(); err != nil {
		return err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	loaded := make(chan error, 1)
	go func() { // one row every 10 ms, on the bench's connection (nothing else uses it meanwhile)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for id := int64(200_000_000); ; id++ {
			select {
			case <-loadCtx.Done():
				loaded <- nil
				return
			case <-tick.C:
			}
			if err := db.insertOne(loadCtx, id); err != nil && loadCtx.Err() == nil {
				loaded <- err
				return
			}
		}
	}()
	defer func() { stopLoad(); <-loaded }()
	var times []float64
	for kill := range b.takeovers {
		progress("takeover %d of %d", kill+1, b.takeovers)
		leader, err := waitLeader(instances)
		if err != nil {
			return err
		}
		time.Sleep(2 * time.Second) // it writes
		killed := time.Now()
		leader.Kill()
		var alive []*harness.Daemon
		for _, d := range instances {
			if d != leader {
				alive = append(alive, d)
			}
		}
		instances = alive
		if err := start(); err != nil {
			return err
		}
		// Any standby may be given the leadership, the one started last too.
		for took := false; !took; time.Sleep(20 * time.Millisecond) {
			if time.Since(killed) > 2*time.Minute {
				select {
				case err := <-loaded:
					return fmt.Errorf("no instance took over within 2 minutes of the leader's kill; the insert load ended: %v", err)
				default:
				}
				return fmt.Errorf("no instance took over within 2 minutes of the leader's kill; a standby's log:\n%s", instances[0].Logs())
			}
			for _, d := range instances {
				if acked, err := scrapeCounter(d, "cdc_records_acknowledged_total"); err == nil && acked > 0 {
					times = append(times, time.Since(killed).Seconds())
					took = true
					break
				}
			}
		}
	}
	slices.Sort(times)
	t.figure(fmt.Sprintf("takeover after kill -9 of the leader, median of %d", len(times)), times[len(times)/2], "s")
	t.figure(fmt.Sprintf("takeover after kill -9 of the leader, max of %d", len(times)), times[len(times)-1], "s")
	return nil
}

// waitLeader returns the instance whose cdc_leader is 1.
func waitLeader(instances []*harness.Daemon) (*harness.Daemon, error) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, d := range instances {
			if leading, err := scrapeCounter(d, "cdc_leader"); err == nil && leading == 1 {
				return d, nil
			}
		}
	}
	return nil, fmt.Errorf("no instance leads")
}

// logLess writes the same backlog again with the table logged as DBAs often
// keep it (less than whole rows), and has the daemon drain it: the log it
// saves, and what the values cdc then reads back cost, against the whole-row
// drain of the same run. The table is logged whole again after it.
func (b *bench) logLess(ctx context.Context, t *table, db database, env []string, config, source string, admin *kadm.Client, fullLog int64, fullDrain float64) error {
	progress("writing the backlog again, with %s", db.lessName())
	if err := db.logLess(ctx, true); err != nil {
		return err
	}
	defer db.logLess(ctx, false)
	before, err := endOffsets(ctx, admin)
	if err != nil {
		return err
	}
	logStart, err := db.logBytes(ctx)
	if err != nil {
		return err
	}
	if err := db.update(ctx, 1000); err != nil {
		return err
	}
	logEnd, err := db.logBytes(ctx)
	if err != nil {
		return err
	}
	less := logEnd - logStart
	d, drain, cpu, err := b.timedDrain(ctx, env, config, source, "drain-"+strings.ReplaceAll(strings.ToLower(db.lessName()), " ", "-"), admin, benchTopic, before+int64(b.rows), b.rows)
	if err != nil {
		return err
	}
	setting := db.lessName()[strings.LastIndexByte(db.lessName(), ' ')+1:]
	t.cpu("drain "+setting, cpu)
	readBack, err := scrapeCounter(d, "cdc_source_read_back_rows_total")
	if err != nil {
		return err
	}
	if err := d.Stop(time.Minute); err != nil {
		return fmt.Errorf("stop after the drain with %s: %v\n%s", db.lessName(), err, d.Logs())
	}
	t.add("backlog drain", "cdc run, "+db.lessName(), drain, "cdc run, whole rows", fullDrain)
	t.figure(fmt.Sprintf("log written by the backlog (%d updates), whole rows", b.rows), float64(fullLog)/(1<<20), "MiB")
	t.figure(fmt.Sprintf("log written by the backlog (%d updates), %s", b.rows, db.lessName()), float64(less)/(1<<20), "MiB")
	t.figure(fmt.Sprintf("log written with %s, against whole rows", db.lessName()), float64(less)/float64(fullLog), "×")
	t.figure(fmt.Sprintf("rows read back per change, %s", db.lessName()), float64(readBack)/float64(b.rows), "per change")
	return nil
}

// timedDrain starts the daemon on config and waits until topic holds want
// records: it returns the daemon, still running, the rate of n rows per
// second since the start, and the CPU the parties used for them.
func (b *bench) timedDrain(ctx context.Context, env []string, config, source, stage string, admin *kadm.Client, topic string, want int64, n int) (*harness.Daemon, float64, cpuUse, error) {
	warmBrokerMemory()
	start := time.Now()
	d, err := b.startDaemon(env, config, source, stage)
	if err != nil {
		return nil, 0, cpuUse{}, err
	}
	cpu := startCPU(d.Pid())
	if err := waitTopicRecords(ctx, admin, d, topic, want, 10*time.Minute); err != nil {
		return nil, 0, cpuUse{}, err
	}
	return d, float64(n) / time.Since(start).Seconds(), cpu.stop(n), nil
}

// textDrain writes the backlog again and has the daemon drain it with
// pgoutput in text (source.postgres.binary: false), against the drain in
// binary of the same run: the walsender's CPU per change is the figure.
func (b *bench) textDrain(ctx context.Context, t *table, db database, env []string, dir string, admin *kadm.Client, binaryDrain float64) error {
	progress("writing the backlog again, for a drain in text")
	config := filepath.Join(dir, "cdc-text.yaml")
	text := configText("bench", db, fmt.Sprintf(benchEntity, db.schema(), filepath.Join(dir, "item.avsc")))
	text = strings.Replace(text, `dsn: "${BENCH_DSN}"}`, `dsn: "${BENCH_DSN}", postgres: {binary: false}}`, 1)
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		return err
	}
	before, err := endOffsets(ctx, admin)
	if err != nil {
		return err
	}
	if err := db.update(ctx, 1000); err != nil {
		return err
	}
	d, drain, cpu, err := b.timedDrain(ctx, env, config, "postgres", "drain-text", admin, benchTopic, before+int64(b.rows), b.rows)
	if err != nil {
		return err
	}
	t.cpu("drain in text", cpu)
	if err := d.Stop(time.Minute); err != nil {
		return fmt.Errorf("stop after the drain in text: %v\n%s", err, d.Logs())
	}
	t.add("backlog drain", "cdc run, pgoutput in binary", binaryDrain, "cdc run, pgoutput in text", drain)
	return nil
}

// outbox drains a backlog of outbox rows, one per item row with its values as
// a JSON payload, in transactions of 1,000: the JSON → Avro path beside the
// table path's drain of the same run.
func (b *bench) outbox(ctx context.Context, t *table, db database, env []string, config, source string, admin *kadm.Client, tableDrain float64) error {
	progress("writing the outbox backlog")
	if err := db.writeOutbox(ctx, b.rows, 1000); err != nil {
		return err
	}
	d, rate, cpu, err := b.timedDrain(ctx, env, config, source, "outbox", admin, outboxTopic, int64(b.rows), b.rows)
	if err != nil {
		return err
	}
	t.cpu("outbox drain", cpu)
	t.add("outbox drain", "cdc run (outbox rows, JSON to Avro)", rate, "cdc run (catching up, table rows)", tableDrain)
	if err := d.Stop(time.Minute); err != nil {
		return fmt.Errorf("stop after the outbox drain: %v\n%s", err, d.Logs())
	}
	return nil
}

// scrapeCounter reads one unlabelled metric of a running daemon.
func scrapeCounter(d *harness.Daemon, name string) (int64, error) {
	addr, err := d.MetricsAddress(30 * time.Second)
	if err != nil {
		return 0, err
	}
	m, err := harness.Scrape(addr)
	if err != nil {
		return 0, err
	}
	v, ok := m[name]
	if !ok {
		return 0, fmt.Errorf("the daemon's metrics lack %s", name)
	}
	return int64(v), nil
}

// table collects rows of "what, cdc rate, floor name, floor rate", where the
// CPU went, and other figures.
type table struct {
	lines, cpus []string
	figures     []figure
}

// figure is one number of a run, named the same in every run.
type figure struct {
	name, unit string
	value      float64
}

func (t *table) cpu(what string, use cpuUse) {
	t.cpus = append(t.cpus, fmt.Sprintf("  %-14s %s", what, use))
	if use.withDaemon {
		t.figure(fmt.Sprintf("%-14s CPU per row, daemon", what), use.daemonRow, "µs")
	}
	t.figure(fmt.Sprintf("%-14s CPU per row, broker and bench", what), use.benchRow, "µs")
	t.figure(fmt.Sprintf("%-14s CPU per row, database and others", what), use.othersRow, "µs")
}

func (t *table) add(what, cdcName string, cdcRate float64, floorName string, floorRate float64) {
	t.lines = append(t.lines, fmt.Sprintf("  %-14s %-28s %10.0f/s   %-20s %10.0f/s   ratio %.2f",
		what, cdcName, cdcRate, floorName, floorRate, cdcRate/floorRate))
	t.figure(fmt.Sprintf("%-14s %-28s / %s", what, cdcName, floorName), cdcRate/floorRate, "ratio")
}

func (t *table) figure(name string, value float64, unit string) {
	t.figures = append(t.figures, figure{name: name, unit: unit, value: value})
}

func (t *table) print() {
	for _, l := range t.lines {
		fmt.Fprintln(results, l)
	}
	for _, l := range t.cpus {
		fmt.Fprintln(results, l)
	}
	for _, f := range t.figures {
		if f.unit != "ratio" && f.unit != "µs" { // both in the lines above
			fmt.Fprintf(results, "  %s: %s\n", f.name, formatFigure(f.value, f.unit))
		}
	}
	fmt.Fprintln(results)
}

// printSummary prints each figure's median over the runs, and its range: the
// ratios first.
func printSummary(source string, runs []*table) {
	fmt.Fprintf(results, "== %s: median of %d runs (lowest – highest)\n", source, len(runs))
	for _, ratios := range []bool{true, false} {
		for i, f := range runs[0].figures {
			if (f.unit == "ratio") != ratios {
				continue
			}
			values := make([]float64, 0, len(runs))
			for _, r := range runs {
				values = append(values, r.figures[i].value)
			}
			slices.Sort(values)
			median := values[len(values)/2]
			if len(values)%2 == 0 {
				median = (values[len(values)/2-1] + median) / 2
			}
			fmt.Fprintf(results, "  %-70s %s (%s – %s)\n", f.name, formatFigure(median, f.unit),
				formatFigure(values[0], f.unit), formatFigure(values[len(values)-1], f.unit))
		}
	}
	fmt.Fprintln(results)
}

func formatFigure(v float64, unit string) string {
	switch unit {
	case "ratio":
		return fmt.Sprintf("%.2f", v)
	case "/s", "MB":
		return fmt.Sprintf("%.0f %s", v, unit)
	case "µs", "per change":
		return fmt.Sprintf("%.2f %s", v, unit)
	case "×":
		return fmt.Sprintf("%.2f×", v)
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}

// endOffsets is the number of records the bench topic holds.
func endOffsets(ctx context.Context, admin *kadm.Client) (int64, error) {
	return topicEnd(ctx, admin, benchTopic)
}

// topicEnd is the number of records a topic holds (the sum of its
// partitions' end offsets).
func topicEnd(ctx context.Context, admin *kadm.Client, topic string) (int64, error) {
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			n += o.Offset
		}
	})
	return n, nil
}

// waitRecords waits until the bench's topic holds n records.
func waitRecords(ctx context.Context, admin *kadm.Client, d *harness.Daemon, n int64, timeout time.Duration) error {
	return waitTopicRecords(ctx, admin, d, benchTopic, n, timeout)
}

// waitTopicRecords waits until a topic holds n records.
func waitTopicRecords(ctx context.Context, admin *kadm.Client, d *harness.Daemon, topic string, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if d.Exited() {
			return fmt.Errorf("the daemon exited: %v\n%s", d.Wait(0), d.Logs())
		}
		got, err := topicEnd(ctx, admin, topic)
		if err == nil && got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d records after %s (%v)\n%s", got, n, timeout, err, d.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchRSS samples the daemon's resident memory until the returned function is
// called, which returns the peak (the kernel's high-water mark when readable).
func watchRSS(d *harness.Daemon) func() int64 {
	stop := make(chan struct{})
	done := make(chan int64)
	go func() {
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if hwm, ok := statusBytes(d.Pid(), "VmHWM:"); ok {
				peak = max(peak, hwm)
			} else if rss, ok := statusBytes(d.Pid(), "VmRSS:"); ok {
				peak = max(peak, rss)
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 { close(stop); return <-done }
}

func statusBytes(pid int, field string) (int64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}
