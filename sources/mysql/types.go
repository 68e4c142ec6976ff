package mysql

import (
	"fmt"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/cdc-dev/cdc"
)

// columnType is a column's type as both the catalog (information_schema) and the
// binlog's table-map event can describe it. Both descriptions go through it, so a
// table described by the catalog and one read from the binlog compare equal when
// nothing changed.
type columnType struct {
	name string
	// base is the type as information_schema.COLUMNS.DATA_TYPE spells it, with
	// the text and blob sizes folded ("text", "blob") and geometry types as
	// "geometry": the binlog does not tell them apart.
	base     string
	unsigned bool
	nullable bool
	// precision and scale of decimals; fsp of temporal types; bits of bit(n);
	// length of binary(n), whose values are padded to it.
	precision, scale, fsp, bits, length int
	// charset of character columns ("binary" for byte strings).
	charset string
	// elements of enum and set columns, in UTF-8 (binlog only: the catalog's
	// description is not used to decode values).
	elements []string
	// databaseType is the catalog's COLUMN_TYPE, e.g. "varchar(50)"; a type read
	// from the binlog renders its own.
	databaseType string
}

// ZeroDates says what becomes of MySQL's zero dates ('0000-00-00', and dates
// with a zero month or day), which no Avro date or timestamp can hold.
type ZeroDates string

const (
	// ZeroDatesError stops the daemon at the first zero date, naming it.
	ZeroDatesError ZeroDates = "error"
	// ZeroDatesNull sends zero dates as NULL; date, datetime and timestamp
	// columns then count as nullable, so their fields need a null branch.
	ZeroDatesNull ZeroDates = "null"
)

var integerBits = map[string]int{"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "bigint": 64}

// column turns the type into the core's description. It refuses types cdc
// cannot read exactly, and character sets it cannot convert to UTF-8.
func (t columnType) column(zero ZeroDates) (cdc.Column, error) {
	c := cdc.Column{Name: t.name, DatabaseType: t.databaseType, Nullable: t.nullable}
	if c.DatabaseType == "" {
		c.DatabaseType = t.render()
	}
	switch b := t.base; {
	case integerBits[b] != 0:
		c.Kind, c.Bits = cdc.KindInt, integerBits[b]
		if t.unsigned {
			c.Kind = cdc.KindUint
		}
	case b == "year":
		c.Kind, c.Bits = cdc.KindInt, 16
	case b == "decimal":
		c.Kind, c.Precision, c.Scale = cdc.KindDecimal, t.precision, t.scale
	case b == "float":
		c.Kind, c.Bits = cdc.KindFloat, 32
	case b == "double":
		c.Kind, c.Bits = cdc.KindFloat, 64
	case b == "bit" && t.bits == 1:
		c.Kind = cdc.KindBool
	case b == "bit":
		c.Kind, c.Bits = cdc.KindUint, t.bits
	case b == "date":
		c.Kind = cdc.KindDate
	case b == "datetime", b == "timestamp":
		c.Kind, c.FractionDigits, c.WithTimeZone = cdc.KindTimestamp, t.fsp, b == "timestamp"
	case b == "time":
		c.Kind, c.FractionDigits = cdc.KindDuration, t.fsp
	case b == "char", b == "varchar", b == "text", b == "enum", b == "set":
		if _, ok := charsetDecoders[t.charset]; !ok {
			return c, fmt.Errorf("column %s (%s) uses character set %s, which cdc cannot convert to UTF-8 yet (supported: utf8mb4, utf8mb3, latin1, ascii): convert the column to utf8mb4",
				t.name, c.DatabaseType, t.charset)
		}
		c.Kind = cdc.KindString
	case b == "binary", b == "varbinary", b == "blob", b == "geometry":
		c.Kind = cdc.KindBytes
	case b == "json":
		c.Kind = cdc.KindJSON
	default:
		return c, fmt.Errorf("column %s has type %s, which cdc cannot read yet", t.name, c.DatabaseType)
	}
	if zero == ZeroDatesNull && (t.base == "date" || t.base == "datetime" || t.base == "timestamp") {
		c.Nullable = true
	}
	return c, nil
}

// readsRaw says the snapshot reads the column's bytes and decodes them itself,
// as the binlog's are: text in a single-byte character set, whose bytes the
// server would convert to '?' where its character set has no character.
func (t columnType) readsRaw() bool {
	switch t.base {
	case "char", "varchar", "text":
		return t.charset == "latin1" || t.charset == "ascii"
	}
	return false
}

// render spells a type read from the binlog the way MySQL would.
func (t columnType) render() string {
	s := t.base
	switch t.base {
	case "decimal":
		s = fmt.Sprintf("decimal(%d,%d)", t.precision, t.scale)
	case "datetime", "timestamp", "time":
		if t.fsp > 0 {
			s = fmt.Sprintf("%s(%d)", t.base, t.fsp)
		}
	case "bit":
		s = fmt.Sprintf("bit(%d)", t.bits)
	case "binary":
		s = fmt.Sprintf("binary(%d)", t.length)
	case "enum", "set":
		quoted := make([]string, len(t.elements))
		for i, e := range t.elements {
			quoted[i] = "'" + strings.ReplaceAll(e, "'", "''") + "'"
		}
		s = t.base + "(" + strings.Join(quoted, ",") + ")"
	}
	if t.unsigned {
		s += " unsigned"
	}
	return s
}

// catalogBase folds information_schema's DATA_TYPE into a columnType base.
func catalogBase(dataType string) string {
	switch dataType {
	case "tinytext", "mediumtext", "longtext":
		return "text"
	case "tinyblob", "mediumblob", "longblob":
		return "blob"
	case "real":
		return "double"
	case "numeric":
		return "decimal"
	case "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection":
		return "geometry"
	}
	return dataType
}

// Binlog column types named by their code alone, and those whose metadata is
// the fractional-second precision.
var (
	plainBinlogTypes = map[byte]string{
		mysql.MYSQL_TYPE_TINY: "tinyint", mysql.MYSQL_TYPE_SHORT: "smallint", mysql.MYSQL_TYPE_INT24: "mediumint",
		mysql.MYSQL_TYPE_LONG: "int", mysql.MYSQL_TYPE_LONGLONG: "bigint", mysql.MYSQL_TYPE_FLOAT: "float",
		mysql.MYSQL_TYPE_DOUBLE: "double", mysql.MYSQL_TYPE_DATE: "date", mysql.MYSQL_TYPE_NEWDATE: "date",
		mysql.MYSQL_TYPE_DATETIME: "datetime", mysql.MYSQL_TYPE_TIMESTAMP: "timestamp", mysql.MYSQL_TYPE_TIME: "time",
		mysql.MYSQL_TYPE_JSON: "json", mysql.MYSQL_TYPE_GEOMETRY: "geometry",
	}
	fractionalBinlogTypes = map[byte]string{
		mysql.MYSQL_TYPE_DATETIME2: "datetime", mysql.MYSQL_TYPE_TIMESTAMP2: "timestamp", mysql.MYSQL_TYPE_TIME2: "time",
	}
)

// tableMapTypes describes the columns of a table-map event. It needs the
// binlog_row_metadata=FULL part of the event (names, signedness, charsets, enum
// and set elements); collations maps the server's collation ids to charsets.
func tableMapTypes(ev *replication.TableMapEvent, collations map[uint64]string) ([]columnType, error) {
	names := ev.ColumnNameString()
	if len(names) != int(ev.ColumnCount) {
		return nil, fmt.Errorf("the binlog's table map for %s.%s has no column names: set binlog_row_metadata = FULL", ev.Schema, ev.Table)
	}
	unsigned := ev.UnsignedMap()
	charsets := ev.CollationMap()
	enumSetCharsets := ev.EnumSetCollationMap()
	enums, sets := ev.EnumStrValueMap(), ev.SetStrValueMap()
	types := make([]columnType, ev.ColumnCount)
	for i := range types {
		meta := ev.ColumnMeta[i]
		_, nullable := ev.Nullable(i)
		t := columnType{name: names[i], nullable: nullable, unsigned: unsigned[i]}
		// Character types name their binary twin when the charset is "binary".
		character := func(text, binary string) {
			t.base, t.charset = text, collations[charsets[i]]
			if t.charset == "binary" {
				t.base = binary
			}
		}
		typ := ev.ColumnType[i]
		switch {
		case plainBinlogTypes[typ] != "":
			t.base = plainBinlogTypes[typ]
		case fractionalBinlogTypes[typ] != "":
			t.base, t.fsp = fractionalBinlogTypes[typ], int(meta)
		}
		switch typ {
		case mysql.MYSQL_TYPE_YEAR:
			t.base, t.unsigned = "year", false
		case mysql.MYSQL_TYPE_NEWDECIMAL:
			t.base, t.precision, t.scale = "decimal", int(meta>>8), int(meta&0xff)
		case mysql.MYSQL_TYPE_BIT:
			t.base, t.bits = "bit", int(meta>>8)*8+int(meta&0xff)
		case mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VAR_STRING:
			character("varchar", "varbinary")
		case mysql.MYSQL_TYPE_BLOB:
			character("text", "blob")
		case mysql.MYSQL_TYPE_STRING:
			switch real := byte(meta >> 8); real {
			case mysql.MYSQL_TYPE_ENUM, mysql.MYSQL_TYPE_SET:
				t.base, t.charset = "enum", collations[enumSetCharsets[i]]
				elements := enums[i]
				if real == mysql.MYSQL_TYPE_SET {
					t.base, elements = "set", sets[i]
				}
				decode := charsetDecoders[t.charset]
				if decode == nil {
					decode = func(b []byte) ([]byte, error) { return b, nil } // refused by column()
				}
				for _, e := range elements {
					text, err := decode([]byte(e))
					if err != nil {
						return nil, fmt.Errorf("%s.%s column %s: element %q: %v", ev.Schema, ev.Table, t.name, e, err)
					}
					t.elements = append(t.elements, string(text))
				}
			default:
				character("char", "binary")
				// The length is in the low byte, with two bits folded into the
				// type byte for lengths past 255.
				t.length = int(uint16(meta&0xff) | (uint16(((meta>>8)&0x30)^0x30) << 4))
			}
		}
		if t.base == "" {
			t.base = fmt.Sprintf("binlog type %d", typ)
		}
		types[i] = t
	}
	return types, nil
}
