package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/cdc-dev/cdc/integration/harness"
	"github.com/cdc-dev/cdc/sources"
)

type postgres struct {
	server *harness.Postgres
	dsn    string
	conn   *pgx.Conn
	endLSN string // the WAL's end after the last update, for pg_recvlogical
}

func startPostgres(ctx context.Context) (*postgres, error) {
	server, err := harness.StartPostgres()
	if err != nil {
		return nil, err
	}
	p := &postgres{server: server}
	if p.dsn, err = server.CreateDatabase(ctx, "bench"); err != nil {
		p.close()
		return nil, err
	}
	if p.conn, err = pgx.Connect(ctx, p.dsn); err != nil {
		p.close()
		return nil, err
	}
	// The test server runs with synchronous_commit=off, which delays sending a
	// commit to logical replication by up to wal_writer_delay (200 ms): the
	// bench's writes commit synchronously, as a production database would.
	if _, err := p.conn.Exec(ctx, "SET synchronous_commit = on"); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// slotStats are the server's counters of what it decoded for the bench's slot.
type slotStats struct{ streamBytes, spillBytes int64 }

// slotStats reads them once the walsender has reported its latest (it
// flushes them about once a second, and when it exits).
func (p *postgres) slotStats(ctx context.Context) (slotStats, error) {
	time.Sleep(2 * time.Second)
	var s slotStats
	err := p.conn.QueryRow(ctx, `SELECT coalesce(sum(stream_bytes), 0), coalesce(sum(spill_bytes), 0) FROM pg_catalog.pg_stat_replication_slots WHERE slot_name = 'cdc_bench'`).
		Scan(&s.streamBytes, &s.spillBytes)
	return s, err
}

func (p *postgres) close() {
	if p.conn != nil {
		p.conn.Close(context.Background())
	}
	p.server.Stop()
}

func (p *postgres) env() []string { return []string{"BENCH_DSN=" + p.dsn} }

func (p *postgres) sourceConfig() string { return `source: {kind: postgres, dsn: "${BENCH_DSN}"}` }

func (p *postgres) schema() string { return "public" }

func (p *postgres) loadWide(ctx context.Context, n, width int) error {
	_, err := p.conn.Exec(ctx, fmt.Sprintf(`
		CREATE TABLE wide_item (id bigint PRIMARY KEY, doc text NOT NULL);
		ALTER TABLE wide_item REPLICA IDENTITY FULL;
		INSERT INTO wide_item SELECT g, repeat(md5(g::text), %d) FROM generate_series(1, %d) g`, width/32, n))
	return err
}

func (p *postgres) load(ctx context.Context, n int) error {
	_, err := p.conn.Exec(ctx, fmt.Sprintf(`
		CREATE TABLE item (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2) NOT NULL, qty integer NOT NULL,
			created_at timestamptz NOT NULL, note text);
		ALTER TABLE item REPLICA IDENTITY FULL;
		CREATE TABLE outbox (id bigserial PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL, payload jsonb NOT NULL);
		INSERT INTO item SELECT g, 'item name ' || g || ' ' || repeat('x', 40), (g %% 100000) / 100.0, g %% 1000,
			timestamptz '2024-01-01' + g * interval '1 second', 'a note of ' || repeat('y', 50) FROM generate_series(1, %d) g`, n))
	if err != nil {
		return err
	}
	// Written out now, the load's pages are not the checkpointer's work
	// during a later stage (as on MariaDB; see mariadb.settle).
	if _, err = p.conn.Exec(ctx, "VACUUM ANALYZE item"); err != nil {
		return err
	}
	_, err = p.conn.Exec(ctx, "CHECKPOINT")
	return err
}

// readConn opens the connection a floor reads on: a new one, as the daemon's
// are. The bench's own connection loaded the table, and its backend reads it
// again for far less of the server's CPU: 0.61 µs per row of a plain read,
// against 1.26–1.32 on a new connection, whose backend maps the shared
// buffers as it reads. MariaDB's connections are threads of one process,
// which share its memory.
func (p *postgres) readConn(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, p.dsn)
}

func (p *postgres) plainRead(ctx context.Context) (int, error) {
	conn, err := p.readConn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	tag, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY public.item TO STDOUT")
	return int(tag.RowsAffected()), err
}

// keyOrderedRead reads the table as cdc's snapshot does by default: COPYs of
// chunks in key order, each after the last key of the one before.
func (p *postgres) keyOrderedRead(ctx context.Context) (int, error) {
	conn, err := p.readConn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	total, last, chunk := 0, "0", sources.DefaultChunkSize
	var w lastLine
	for {
		tag, err := conn.PgConn().CopyTo(ctx, &w, fmt.Sprintf(
			"COPY (SELECT id, name, price, qty, created_at, note FROM public.item WHERE id > %s ORDER BY id LIMIT %d) TO STDOUT", last, chunk))
		if err != nil {
			return total, err
		}
		total += int(tag.RowsAffected())
		if int(tag.RowsAffected()) < chunk {
			return total, nil
		}
		last, _, _ = strings.Cut(string(w.line), "\t")
	}
}

// lastLine discards COPY's output but the last line (a floor: no allocation
// once warm, and only the lines that end a write are copied).
type lastLine struct{ line, partial []byte }

func (w *lastLine) Write(data []byte) (int, error) {
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		w.partial = append(w.partial, data...)
		return len(data), nil
	}
	if start := bytes.LastIndexByte(data[:end], '\n') + 1; start > 0 {
		w.line = append(w.line[:0], data[start:end]...)
	} else {
		w.line = append(append(w.line[:0], w.partial...), data[:end]...)
	}
	w.partial = append(w.partial[:0], data[end+1:]...)
	return len(data), nil
}

// markLog creates the slots the floors read from: the backlog starts here.
func (p *postgres) markLog(ctx context.Context) error {
	for _, slot := range []string{"bench_floor", "bench_recv"} {
		if _, err := p.conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot); err != nil {
			return fmt.Errorf("create slot %s: %w", slot, err)
		}
	}
	return nil
}

func (p *postgres) update(ctx context.Context, batch int) error {
	if batch == 0 {
		_, err := p.conn.Exec(ctx, "UPDATE item SET qty = qty + 1")
		return err
	}
	var last int64
	if err := p.conn.QueryRow(ctx, "SELECT max(id) FROM item WHERE id < 100000000").Scan(&last); err != nil {
		return err
	}
	for from := int64(0); from < last; from += int64(batch) {
		if _, err := p.conn.Exec(ctx, "UPDATE item SET qty = qty + 1 WHERE id > $1 AND id <= $2", from, from+int64(batch)); err != nil {
			return err
		}
	}
	return p.conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&p.endLSN)
}

func (p *postgres) writeOutbox(ctx context.Context, n, batch int) error {
	for from := 0; from < n; from += batch {
		_, err := p.conn.Exec(ctx, `INSERT INTO outbox (aggregatetype, aggregateid, payload)
			SELECT 'Item', g::text, jsonb_build_object('id', g, 'name', 'item name ' || g || ' ' || repeat('x', 40), 'price', round((g % 100000) / 100.0, 2),
				'qty', g % 1000, 'created_at', timestamptz '2024-01-01' + g * interval '1 second', 'note', 'a note of ' || repeat('y', 50))
			FROM generate_series($1::bigint, $2::bigint) g`, from+1, min(from+batch, n))
		if err != nil {
			return err
		}
	}
	return nil
}

// floorDrain is the bare pglogrepl loop: receive, parse each pgoutput message
// (tuples included), discard, and confirm progress as cdc does.
func (p *postgres) floorDrain(ctx context.Context, n int) error {
	conn, err := pgconn.Connect(ctx, p.dsn+"&replication=database")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	err = pglogrepl.StartReplication(ctx, conn, "bench_floor", 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'cdc_bench'"}})
	if err != nil {
		return err
	}
	var pos pglogrepl.LSN
	updates := 0
	nextStatus := time.Now()
	for updates < n {
		if time.Now().After(nextStatus) {
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: pos}); err != nil {
				return err
			}
			nextStatus = time.Now().Add(time.Second)
		}
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		data, ok := msg.(*pgproto3.CopyData)
		if !ok || len(data.Data) == 0 || data.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		xld, err := pglogrepl.ParseXLogData(data.Data[1:])
		if err != nil {
			return err
		}
		logical, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			return err
		}
		if _, ok := logical.(*pglogrepl.UpdateMessage); ok {
			updates++
		}
		pos = xld.WALStart + pglogrepl.LSN(len(xld.WALData))
	}
	return nil
}

// extraFloors runs PostgreSQL's own pg_recvlogical on the same backlog.
func (p *postgres) extraFloors(ctx context.Context, n int) (map[string]float64, error) {
	bin, err := harness.PostgresBinDir()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_recvlogical"), "-d", p.dsn, "--slot", "bench_recv", "--start",
		"--endpos", p.endLSN, "--no-loop", "-f", "/dev/null", "-o", "proto_version=1", "-o", "publication_names=cdc_bench")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pg_recvlogical: %v: %s", err, out)
	}
	return map[string]float64{"pg_recvlogical": float64(n) / time.Since(start).Seconds()}, nil
}

func (p *postgres) insertOne(ctx context.Context, id int64) error {
	_, err := p.conn.Exec(ctx, "INSERT INTO item VALUES ($1, 'latency', 1.00, 1, now(), NULL)", id)
	return err
}

func (p *postgres) insertRows(ctx context.Context, first int64, n int) error {
	_, err := p.conn.Exec(ctx, "INSERT INTO item SELECT g, 'latency', 1.00, 1, now(), NULL FROM generate_series($1::bigint, $2::bigint) g", first, first+int64(n)-1)
	return err
}

func (p *postgres) logBytes(ctx context.Context) (int64, error) {
	var n int64
	err := p.conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&n)
	return n, err
}

func (p *postgres) logLess(ctx context.Context, less bool) error {
	identity := "FULL"
	if less {
		identity = "DEFAULT"
	}
	_, err := p.conn.Exec(ctx, "ALTER TABLE item REPLICA IDENTITY "+identity)
	return err
}

func (p *postgres) lessName() string { return "REPLICA IDENTITY DEFAULT" }

func (p *postgres) exec(ctx context.Context, statements ...string) error {
	for _, s := range statements {
		if _, err := p.conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func (p *postgres) series(from, to int) string {
	return fmt.Sprintf("(SELECT g AS n FROM generate_series(%d, %d) g) s", from, to)
}
