package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/cdc-dev/cdc/integration/harness"
	"github.com/cdc-dev/cdc/sources"
)

type mariadb struct {
	server *harness.MariaDB
	dsn    string
	conn   *client.Conn
	mark   mysql.Position
}

func startMariaDB() (*mariadb, error) {
	server, err := harness.StartMariaDB()
	if err != nil {
		return nil, err
	}
	m := &mariadb{server: server}
	if m.dsn, err = server.CreateDatabase("bench"); err != nil {
		m.close()
		return nil, err
	}
	if m.conn, err = server.Conn("bench"); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

func (m *mariadb) close() {
	if m.conn != nil {
		m.conn.Close()
	}
	m.server.Stop()
}

func (m *mariadb) env() []string { return []string{"BENCH_DSN=" + m.dsn} }

func (m *mariadb) sourceConfig() string { return `source: {kind: mysql, dsn: "${BENCH_DSN}"}` }

func (m *mariadb) schema() string { return "bench" }

func (m *mariadb) loadWide(_ context.Context, n, width int) error {
	if _, err := m.conn.Execute("CREATE TABLE wide_item (id BIGINT PRIMARY KEY, doc LONGTEXT NOT NULL) ENGINE=InnoDB"); err != nil {
		return err
	}
	_, err := m.conn.Execute(fmt.Sprintf("INSERT INTO wide_item SELECT seq, REPEAT(MD5(seq), %d) FROM seq_1_to_%d", width/32, n))
	return err
}

func (m *mariadb) load(_ context.Context, n int) error {
	if _, err := m.conn.Execute(`CREATE TABLE item (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, price DECIMAL(12,2) NOT NULL,
		qty INT NOT NULL, created_at DATETIME(6) NOT NULL, note VARCHAR(100)) ENGINE=InnoDB`); err != nil {
		return err
	}
	if _, err := m.conn.Execute(`CREATE TABLE outbox (id BIGINT AUTO_INCREMENT PRIMARY KEY, aggregatetype VARCHAR(20) NOT NULL,
		aggregateid VARCHAR(20) NOT NULL, payload JSON NOT NULL) ENGINE=InnoDB`); err != nil {
		return err
	}
	const chunk = 100_000
	for from := 0; from < n; from += chunk {
		_, err := m.conn.Execute(fmt.Sprintf(`INSERT INTO item SELECT seq, CONCAT('item name ', seq, ' ', REPEAT('x', 40)),
			(seq %% 100000) / 100, seq %% 1000, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND, CONCAT('a note of ', REPEAT('y', 50))
			FROM seq_%d_to_%d`, from+1, min(from+chunk, n)))
		if err != nil {
			return err
		}
	}
	if _, err := m.conn.Execute("ANALYZE TABLE item"); err != nil {
		return err
	}
	return m.settle()
}

// settle waits until InnoDB has written the pages the load dirtied and purged
// its undo log, so that no stage pays for the load: left to do it in the
// background, the server spent up to twice its CPU per row on the plain
// read that came next (0.60–0.65 µs settled, 0.70–1.27 not), and the plain
// read's rate moved from 0.9M to 1.7M rows/s from run to run. The server's
// settings are restored afterwards.
func (m *mariadb) settle() error {
	const timeout = 5 * time.Minute
	if _, err := m.conn.Execute("SET GLOBAL innodb_max_dirty_pages_pct = 0, innodb_io_capacity_max = 100000, innodb_io_capacity = 100000"); err != nil {
		return err
	}
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		r, err := m.conn.Execute(`SELECT (SELECT variable_value FROM information_schema.global_status WHERE variable_name = 'INNODB_BUFFER_POOL_PAGES_DIRTY'),
			(SELECT count FROM information_schema.innodb_metrics WHERE name = 'trx_rseg_history_len')`)
		if err != nil {
			return err
		}
		dirty, _ := r.GetInt(0, 0)
		history, _ := r.GetInt(0, 1)
		if dirty == 0 && history == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("InnoDB still holds %d dirty pages and a history list of %d %s after the load", dirty, history, timeout)
		}
	}
	_, err := m.conn.Execute("SET GLOBAL innodb_max_dirty_pages_pct = DEFAULT, innodb_io_capacity = DEFAULT, innodb_io_capacity_max = DEFAULT")
	return err
}

func (m *mariadb) plainRead(context.Context) (int, error) {
	rows := 0
	var result mysql.Result
	err := m.conn.ExecuteSelectStreaming("SELECT * FROM item", &result, func(row []mysql.FieldValue) error {
		rows++
		return nil
	}, nil)
	return rows, err
}

// keyOrderedRead reads the table as cdc's snapshot does by default: queries of
// chunks in key order, each after the last key of the one before.
func (m *mariadb) keyOrderedRead(context.Context) (int, error) {
	total, last, chunk := 0, int64(0), sources.DefaultChunkSize
	for {
		rows := 0
		var result mysql.Result
		err := m.conn.ExecuteSelectStreaming(fmt.Sprintf("SELECT id, name, price, qty, created_at, note FROM item WHERE id > %d ORDER BY id LIMIT %d", last, chunk),
			&result, func(row []mysql.FieldValue) error {
				rows++
				last = row[0].AsInt64()
				return nil
			}, nil)
		total += rows
		if err != nil || rows < chunk {
			return total, err
		}
	}
}

func (m *mariadb) markLog(context.Context) error {
	res, err := m.conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		return err
	}
	file, _ := res.GetString(0, 0)
	pos, _ := res.GetUint(0, 1)
	m.mark = mysql.Position{Name: file, Pos: uint32(pos)}
	return nil
}

func (m *mariadb) update(_ context.Context, batch int) error {
	if batch == 0 {
		_, err := m.conn.Execute("UPDATE item SET qty = qty + 1")
		return err
	}
	res, err := m.conn.Execute("SELECT MAX(id) FROM item WHERE id < 100000000")
	if err != nil {
		return err
	}
	last, _ := res.GetInt(0, 0)
	for from := int64(0); from < last; from += int64(batch) {
		if _, err := m.conn.Execute("UPDATE item SET qty = qty + 1 WHERE id > ? AND id <= ?", from, from+int64(batch)); err != nil {
			return err
		}
	}
	return nil
}

func (m *mariadb) writeOutbox(_ context.Context, n, batch int) error {
	for from := 0; from < n; from += batch {
		_, err := m.conn.Execute(fmt.Sprintf(`INSERT INTO outbox (aggregatetype, aggregateid, payload)
			SELECT 'Item', seq, JSON_OBJECT('id', seq, 'name', CONCAT('item name ', seq, ' ', REPEAT('x', 40)), 'price', CAST((seq %% 100000) / 100 AS DECIMAL(12,2)),
				'qty', seq %% 1000, 'created_at', DATE_FORMAT(TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND, '%%Y-%%m-%%dT%%H:%%i:%%sZ'), 'note', CONCAT('a note of ', REPEAT('y', 50)))
			FROM seq_%d_to_%d`, from+1, min(from+batch, n)))
		if err != nil {
			return err
		}
	}
	return nil
}

// floorDrain is the bare BinlogSyncer loop with cdc's decoding options: read
// every event from the mark, decode it, count updated rows, discard.
func (m *mariadb) floorDrain(ctx context.Context, n int) error {
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 4242, Flavor: mysql.MariaDBFlavor, Host: "127.0.0.1", Port: uint16(m.server.Port), User: "root",
		// The daemon's decoding options.
		TimestampStringLocation: time.UTC, RenderJSONAsMySQLText: true, ParseTime: true, DisableRetrySync: true, EventCacheCount: 256,
		Logger: slog.New(slog.DiscardHandler),
	})
	defer syncer.Close()
	stream, err := syncer.StartSync(m.mark)
	if err != nil {
		return err
	}
	updates := 0
	for updates < n {
		ev, err := stream.GetEvent(ctx)
		if err != nil {
			return err
		}
		if rows, ok := ev.Event.(*replication.RowsEvent); ok {
			switch ev.Header.EventType {
			case replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2:
				updates += len(rows.Rows) / 2
			}
		}
	}
	return nil
}

// extraFloors runs the BinlogSyncer loop again with the rows left undecoded
// (only the events' headers are read, as the daemon has go-mysql do before it
// decodes the row images itself): the rate of reading the log alone.
func (m *mariadb) extraFloors(ctx context.Context, n int) (map[string]float64, error) {
	res, err := m.conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		return nil, err
	}
	endFile, _ := res.GetString(0, 0)
	endPos, _ := res.GetUint(0, 1)
	start := time.Now()
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID: 4243, Flavor: mysql.MariaDBFlavor, Host: "127.0.0.1", Port: uint16(m.server.Port), User: "root",
		DisableRetrySync: true, EventCacheCount: 256, Logger: slog.New(slog.DiscardHandler),
		RowsEventDecodeFunc: func(e *replication.RowsEvent, body []byte) error {
			_, err := e.DecodeHeader(body)
			return err
		},
	})
	defer syncer.Close()
	stream, err := syncer.StartSync(m.mark)
	if err != nil {
		return nil, err
	}
	file := m.mark.Name
	for {
		ev, err := stream.GetEvent(ctx)
		if err != nil {
			return nil, err
		}
		if r, ok := ev.Event.(*replication.RotateEvent); ok {
			file = string(r.NextLogName)
		}
		if file == endFile && uint64(ev.Header.LogPos) >= endPos {
			break
		}
	}
	return map[string]float64{"read, rows undecoded": float64(n) / time.Since(start).Seconds()}, nil
}

func (m *mariadb) insertOne(_ context.Context, id int64) error {
	_, err := m.conn.Execute("INSERT INTO item VALUES (?, 'latency', 1.00, 1, NOW(6), NULL)", id)
	return err
}

func (m *mariadb) insertRows(_ context.Context, first int64, n int) error {
	_, err := m.conn.Execute(fmt.Sprintf("INSERT INTO item SELECT seq, 'latency', 1.00, 1, NOW(6), NULL FROM seq_%d_to_%d", first, first+int64(n)-1))
	return err
}

func (m *mariadb) logBytes(context.Context) (int64, error) {
	res, err := m.conn.Execute("SHOW BINARY LOGS")
	if err != nil {
		return 0, err
	}
	var n int64
	for i := range res.RowNumber() {
		size, _ := res.GetInt(i, 1)
		n += size
	}
	return n, nil
}

func (m *mariadb) logLess(_ context.Context, less bool) error {
	image := "FULL"
	if less {
		image = "MINIMAL"
	}
	for _, scope := range []string{"GLOBAL", "SESSION"} {
		if _, err := m.conn.Execute("SET " + scope + " binlog_row_image = '" + image + "'"); err != nil {
			return err
		}
	}
	return nil
}

func (m *mariadb) lessName() string { return "binlog_row_image MINIMAL" }

func (m *mariadb) exec(_ context.Context, statements ...string) error {
	for _, s := range statements {
		if _, err := m.conn.Execute(s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func (m *mariadb) series(from, to int) string {
	return fmt.Sprintf("(SELECT seq AS n FROM seq_%d_to_%d) s", from, to)
}
