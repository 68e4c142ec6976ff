package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdc-dev/cdc/integration/harness"
)

const filmKeySchema = `{"type":"record","name":"FilmKey","namespace":"sakila.v1","fields":[{"name":"id","type":"int"}]}`

// The projection of film, computed by PostgreSQL; a timestamp without time zone
// is its wall clock read as UTC (extract(epoch) does the same).
const filmProjection = `SELECT format('{"id":%s}', film_id) AS key, film_id::text AS id, title, coalesce(description, 'null') AS description,
	coalesce(release_year::text, 'null') AS release_year, language_id::text AS language_id, rental_duration::text AS rental_days,
	rental_rate::text AS rental_rate, coalesce(length::text, 'null') AS length_minutes, replacement_cost::text AS replacement_cost,
	coalesce(rating::text, 'null') AS rating, coalesce(special_features::text, 'null') AS special_features,
	(extract(epoch FROM last_update) * 1000000)::bigint::text AS last_update FROM public.film`

// Sakila's film table (a domain, an enum, an array, a tsvector, small numerics,
// timestamps without time zone) snapshots and streams through a mapping of ours,
// in zstd batches (kafka.compression).
func TestSakilaFilmSnapshotsAndStreams(t *testing.T) {
	s := newEmptyScenario(t)
	for _, f := range []string{"postgres-sakila-schema.sql", "postgres-sakila-insert-data-using-copy.sql.gz"} {
		if err := pg.Psql(s.name, filepath.Join("testdata/sakila", f)); err != nil {
			t.Fatal(err)
		}
	}
	// The one change the source needs from the legacy database.
	s.exec(`ALTER TABLE film REPLICA IDENTITY FULL`)
	schema, _ := filepath.Abs("testdata/sakila-film.avsc")
	config := `name: ` + s.name + `
source: {kind: postgres, dsn: "${SHOP_DSN}"}
kafka: {brokers: ["${KAFKA_BROKERS}"], topic: {partitions: 4, replication_factor: 1}, compression: zstd}
http: {listen: "${CDC_HTTP_LISTEN}"}
entities:
  - name: film
    table: public.film
    topic: sakila.film.v1
    schema: ` + schema + `
    key: [id]
    fields:
      id: film_id
      title: title
      description: description
      release_year: release_year
      language_id: language_id
      rental_days: rental_duration
      rental_rate: rental_rate
      length_minutes: length
      replacement_cost: replacement_cost
      rating: rating
      special_features: special_features
      last_update: last_update
`
	if err := os.WriteFile(s.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	codec, err := harness.NewCodec(schema, filmKeySchema)
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	if n := len(s.waitMatch("sakila.film.v1", codec, filmProjection)); n != 1000 {
		t.Fatalf("%d records after the snapshot, want the 1000 films", n)
	}
	s.exec(
		`UPDATE film SET rental_rate = 0.99, special_features = '{"Behind the Scenes","Director''s cut"}', rating = 'NC-17' WHERE film_id = 1`,
		`UPDATE film SET release_year = NULL, description = 'tab	and "quotes"' WHERE film_id = 2`,
		`INSERT INTO film (title, language_id, rental_duration, rental_rate, replacement_cost, rating, last_update)
		   VALUES ('ZÜRICH NIGHTS ✓', 2, 5, 1.50, 9.99, 'PG-13', '1999-12-31 23:59:59.999999')`,
		`INSERT INTO film (title, language_id, rental_duration, rental_rate, replacement_cost) VALUES ('SHORT LIVED', 1, 3, 0.99, 5.00)`,
		`DELETE FROM film WHERE title = 'SHORT LIVED'`,
		// Only a hidden column, but Sakila's last_updated trigger also sets the
		// mapped last_update: a visible change.
		`UPDATE film SET fulltext = to_tsvector('only internal') WHERE film_id = 4`,
	)
	records := s.waitMatch("sakila.film.v1", codec, filmProjection)
	if n := len(records); n != 1000+6 {
		t.Fatalf("%d records, want 1006: the snapshot, three updates, two inserts and one tombstone", n)
	}
	// A batch that zstd does not shrink (a lone change) goes uncompressed.
	const none, zstd = 0, 4
	compressed := 0
	for _, r := range records {
		switch r.Compression {
		case zstd:
			compressed++
		case none:
		default:
			t.Fatalf("record at offset %d of partition %d came in a batch of codec %d, want zstd (%d) or none", r.Offset, r.Partition, r.Compression, zstd)
		}
	}
	if compressed < 1000 {
		t.Fatalf("%d records in zstd batches, want at least the snapshot's 1000", compressed)
	}
}

const filmProjectionMySQL = "SELECT CONCAT('{\"id\":', film_id, '}') AS `key`, CAST(film_id AS CHAR) AS id, title, description," +
	" CAST(release_year AS CHAR) AS release_year, CAST(language_id AS CHAR) AS language_id, CAST(rental_duration AS CHAR) AS rental_days," +
	" CAST(rental_rate AS CHAR) AS rental_rate, CAST(length AS CHAR) AS length_minutes, CAST(replacement_cost AS CHAR) AS replacement_cost," +
	" rating, special_features, CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', last_update) AS CHAR) AS last_update FROM film"

// Sakila's MySQL schema (unsigned ids, YEAR, ENUM, SET, TIMESTAMP, triggers
// writing another table) with rows of our own snapshots and streams through a
// mapping; the PostgreSQL version's schema, with "int" ids, is refused, and
// so are film's cascading foreign keys until they are accepted.
func TestSakilaMySQLFilmSnapshotsAndStreams(t *testing.T) {
	s := newEmptyMySQLScenario(t)
	if err := maria.Source(s.name, "testdata/sakila/mysql-sakila-schema.sql", "sakila"); err != nil {
		t.Fatal(err)
	}
	s.exec(`INSERT INTO language (language_id, name) VALUES (1, 'English'), (2, 'Italian')`,
		`INSERT INTO film (title, description, release_year, language_id, rental_duration, rental_rate, length, replacement_cost, rating, special_features) VALUES
			('ACADEMY DINOSAUR', 'A Epic Drama of a Feminist', 2006, 1, 6, 0.99, 86, 20.99, 'PG', 'Deleted Scenes,Behind the Scenes'),
			('ACE GOLDFINGER', NULL, NULL, 2, 3, 4.99, NULL, 12.99, 'G', NULL),
			('ADAPTATION HOLES', 'A Astounding Reflection', 2155, 1, 255, 2.99, 65535, 999.99, 'NC-17', 'Trailers,Commentaries,Deleted Scenes,Behind the Scenes')`)
	write := func(schema string, accept ...string) {
		config := `name: ` + s.name + `
source: {kind: mysql, dsn: "${SHOP_MYSQL_DSN}", mysql: {accept_unlogged_cascades: [` + strings.Join(accept, ", ") + `]}}
kafka: {brokers: ["${KAFKA_BROKERS}"], topic: {partitions: 4, replication_factor: 1}}
http: {listen: "${CDC_HTTP_LISTEN}"}
entities:
  - name: film
    table: ` + s.name + `.film
    topic: sakila.film.v1
    schema: ` + schema + `
    key: [id]
    fields: {id: film_id, title: title, description: description, release_year: release_year, language_id: language_id,
      rental_days: rental_duration, rental_rate: rental_rate, length_minutes: length, replacement_cost: replacement_cost,
      rating: rating, special_features: special_features, last_update: last_update}
`
		if err := os.WriteFile(s.config, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pgSchema, _ := filepath.Abs("testdata/sakila-film.avsc")
	write(pgSchema)
	if out, err := s.validate(s.dsn); err == nil || !strings.Contains(out, `field "id": column film_id (int(10) unsigned) cannot be held by "int": use "long"`) {
		t.Fatalf("the int id of the PostgreSQL schema must be refused for INT UNSIGNED: %v\n%s", err, out)
	}
	schema, _ := filepath.Abs("testdata/sakila-film-mysql.avsc")
	write(schema)
	// film's foreign keys to language cascade ON UPDATE: InnoDB changes its
	// rows without the binlog showing it, unless accepted knowingly.
	if out, err := s.validate(s.dsn); err == nil || !strings.Contains(out, "film has foreign key fk_film_language to language with ON DELETE RESTRICT ON UPDATE CASCADE") {
		t.Fatalf("Sakila's cascading foreign keys must be named: %v\n%s", err, out)
	}
	write(schema, s.name+".film")
	codec, err := harness.NewCodec(schema, `{"type":"record","name":"FilmKey","namespace":"sakila.v1","fields":[{"name":"id","type":"long"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	s.waitMatch("sakila.film.v1", codec, filmProjectionMySQL)
	s.exec(`UPDATE film SET rental_rate = rental_rate + 1, special_features = 'Trailers', rating = NULL WHERE film_id = 1`,
		`DELETE FROM film WHERE film_id = 2`,
		`INSERT INTO film (title, language_id, rental_duration, rental_rate, replacement_cost, last_update) VALUES ('AFRICAN EGG', 2, 6, 2.99, 22.99, '2006-02-15 05:03:42')`,
		`UPDATE film SET original_language_id = 2, last_update = last_update WHERE film_id = 3`) // internal only: no record
	records := s.waitMatch("sakila.film.v1", codec, filmProjectionMySQL)
	if len(records) != 3+3 {
		t.Errorf("%d records, want 6: three read, one update, one tombstone, one insert (the internal update emits none)", len(records))
	}
}
