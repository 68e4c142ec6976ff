package mapping

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc"
)

// Expressions are CEL (https://cel.dev): a small, side-effect free language whose
// programs are type-checked when compiled, and cannot loop or touch anything
// outside the row. Each column is a variable of the type its values have:
//
//	bool            bool            int, unsigned int   int, uint
//	float, double   double          decimal             string (exact text; double(x) to compute)
//	text, json      string          bytes               bytes
//	date            timestamp (midnight UTC)            timestamp       timestamp (UTC)
//	time, duration  duration
//
// A nullable column's variable may be null: compare it with null before using it
// (`last_name == null ? first_name : first_name + ' ' + last_name`). An expression
// that fails on a row (a NULL where a value was needed) stops the daemon with the
// row's position rather than guess a value.

// celIdentifier matches the column names CEL can name; other columns cannot be
// used in expressions.
var celIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var celReserved = []string{"as", "break", "const", "continue", "else", "false", "for", "function", "if",
	"import", "in", "let", "loop", "package", "namespace", "null", "return", "true", "var", "void", "while"}

// exprEnv declares a table's columns as CEL variables.
type exprEnv struct {
	env     *cel.Env
	columns map[string]int
	table   *cdc.Table
}

func newExprEnv(t *cdc.Table) (*exprEnv, error) {
	opts := []cel.EnvOption{ext.Strings(), ext.Math(), ext.Encoders()}
	columns := map[string]int{}
	for i, c := range t.Columns {
		if !celIdentifier.MatchString(c.Name) || slices.Contains(celReserved, c.Name) {
			continue
		}
		typ := celType(c.Kind)
		if c.Nullable {
			typ = types.NewNullableType(typ)
		}
		opts = append(opts, cel.Variable(c.Name, typ))
		columns[c.Name] = i
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("expression environment of %s: %w", t.Name, err)
	}
	return &exprEnv{env: env, columns: columns, table: t}, nil
}

func celType(k cdc.Kind) *cel.Type {
	switch k {
	case cdc.KindBool:
		return cel.BoolType
	case cdc.KindInt:
		return cel.IntType
	case cdc.KindUint:
		return cel.UintType
	case cdc.KindFloat:
		return cel.DoubleType
	case cdc.KindBytes:
		return cel.BytesType
	case cdc.KindDate, cdc.KindTimestamp:
		return cel.TimestampType
	case cdc.KindTime, cdc.KindDuration:
		return cel.DurationType
	}
	return cel.StringType
}

// syntaxEnv parses expressions with the functions of every table's
// environment and no columns: what can be checked without the table.
var syntaxEnv = sync.OnceValues(func() (*cel.Env, error) { return cel.NewEnv(ext.Strings(), ext.Math(), ext.Encoders()) })

// checkSyntax parses an expression, without knowing its columns' types.
func checkSyntax(text string) error {
	env, err := syntaxEnv()
	if err != nil {
		return err
	}
	if _, iss := env.Parse(text); iss != nil && iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("at column %d: %s", e.Location.Column()+1, e.Message))
		}
		return fmt.Errorf("expression `%s`: %s", text, strings.Join(msgs, "; "))
	}
	return nil
}

// program is one compiled expression and the columns it reads.
type program struct {
	text    string
	prg     cel.Program
	out     *cel.Type
	columns []int
	env     *exprEnv
}

// compile type-checks an expression. Its error lists every problem with its
// column in the expression.
func (x *exprEnv) compile(text string) (*program, error) {
	checked, iss := x.env.Compile(text)
	if iss != nil && iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msg := e.Message
			name, undeclared := strings.CutPrefix(msg, "undeclared reference to '")
			name, _, _ = strings.Cut(name, "'")
			switch why, omitted := x.table.Omitted[name]; {
			case undeclared && omitted:
				msg = fmt.Sprintf("column %s cannot be read: %s", name, why)
			case undeclared && !strings.Contains(msg, "did you mean"):
				msg += fmt.Sprintf(" (columns of %s: %s)", x.table.Name, strings.Join(x.table.ColumnNames(), ", "))
			}
			msgs = append(msgs, fmt.Sprintf("at column %d: %s", e.Location.Column()+1, msg))
		}
		return nil, fmt.Errorf("expression `%s`: %s", text, readableTypes(strings.Join(msgs, "; ")))
	}
	prg, err := x.env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("expression `%s`: %w", text, err)
	}
	p := &program{text: text, prg: prg, out: checked.OutputType(), env: x}
	for _, ref := range checked.NativeRep().ReferenceMap() {
		if ord, ok := x.columns[ref.Name]; ok && ref.Value == nil {
			p.columns = appendUnique(p.columns, ord)
		}
	}
	slices.Sort(p.columns)
	return p, nil
}

// eval runs the program on a row.
func (p *program) eval(row []cdc.Value) (ref.Val, error) {
	out, _, err := p.prg.Eval(rowActivation{env: p.env, row: row})
	if err != nil {
		return nil, fmt.Errorf("expression `%s` failed: %w%s", p.text, err, p.nullHint(row))
	}
	return out, nil
}

// nullHint names the NULL columns an expression read, the usual cause of an
// evaluation error ("no such overload").
func (p *program) nullHint(row []cdc.Value) string {
	var nulls []string
	for _, c := range p.columns {
		if row[c].Kind == cdc.KindNull {
			nulls = append(nulls, p.env.table.Columns[c].Name)
		}
	}
	if len(nulls) == 0 {
		return ""
	}
	return fmt.Sprintf(" (NULL in %s: test it with `%s == null ? ... : ...`)", strings.Join(nulls, ", "), nulls[0])
}

// rowActivation resolves column variables from one row, converting only the
// columns an expression reads.
type rowActivation struct {
	env *exprEnv
	row []cdc.Value
}

func (a rowActivation) ResolveName(name string) (any, bool) {
	ord, ok := a.env.columns[name]
	if !ok {
		return nil, false
	}
	return celValue(&a.row[ord]), true
}

func (a rowActivation) Parent() interpreter.Activation { return nil }

func celValue(v *cdc.Value) ref.Val {
	switch v.Kind {
	case cdc.KindNull:
		return types.NullValue
	case cdc.KindBool:
		return types.Bool(v.Bool())
	case cdc.KindInt:
		return types.Int(v.Int)
	case cdc.KindUint:
		return types.Uint(v.Uint())
	case cdc.KindFloat:
		return types.Double(v.Float)
	case cdc.KindBytes:
		return types.Bytes(v.Bytes)
	case cdc.KindDate:
		return types.Timestamp{Time: time.Unix(v.Int*86400, 0).UTC()}
	case cdc.KindTimestamp:
		if v.Int == cdc.InfinityMicros || v.Int == cdc.NegInfinityMicros {
			return types.NewErr("timestamp %s has no CEL value", v.String())
		}
		return types.Timestamp{Time: time.UnixMicro(v.Int).UTC()}
	case cdc.KindTime, cdc.KindDuration:
		return types.Duration{Duration: time.Duration(v.Int) * time.Microsecond}
	case cdc.KindUnchanged:
		return types.NewErr("the database did not send this value")
	case cdc.KindInvalid:
		return types.NewErr("value %q has no exact form in its column's type", v.Bytes)
	}
	return types.String(v.Bytes)
}

// condition is a compiled Where or TombstoneWhen.
type condition struct {
	*program
	origin string
}

func compileCondition(x *exprEnv, c Condition) (*condition, error) {
	if c.Expr == "" {
		return nil, nil
	}
	p, err := x.compile(c.Expr)
	if err != nil {
		return nil, err
	}
	if p.out != cel.BoolType {
		return nil, fmt.Errorf("expression `%s` has type %s, not bool", c.Expr, readableTypes(p.out.String()))
	}
	return &condition{program: p, origin: c.Origin}, nil
}

func (c *condition) holds(row []cdc.Value) (bool, error) {
	out, err := c.eval(row)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression `%s` gave %v, not a bool", c.text, out)
	}
	return bool(b), nil
}

// exprEncoder checks that an expression's type fits the Avro field and returns
// the encoder of its results. Where the checker cannot know the type (a value
// that may be null, dyn), each result is checked as it is encoded.
func exprEncoder(p *program, t avro.Schema) (func(dst []byte, v ref.Val) ([]byte, error), error) {
	nullIndex, typIndex, inner := -1, -1, t
	if u, ok := t.(*avro.UnionSchema); ok {
		if !u.Nullable() || len(u.Types()) != 2 {
			return nil, fmt.Errorf("union %s is not supported: use [\"null\", T] for a nullable field, or T", u)
		}
		nullIndex, typIndex = u.Indices()
		inner = u.Types()[typIndex]
	}
	enc, accepts := celEncoder(inner)
	if enc == nil {
		return nil, fmt.Errorf("expressions cannot produce %s fields", inner)
	}
	out := p.out
	if out.Kind() == types.NullTypeKind && nullIndex < 0 {
		return nil, fmt.Errorf("expression `%s` is always null but the field type %s has no null", p.text, t)
	}
	if out.Kind() != types.DynKind && out.Kind() != types.NullTypeKind && !slices.Contains(accepts, out.Kind()) {
		return nil, fmt.Errorf("expression `%s` has type %s; the field type %s needs %s", p.text, readableTypes(out.String()), t, kindNames(accepts))
	}
	return func(dst []byte, v ref.Val) ([]byte, error) {
		if v == types.NullValue {
			if nullIndex < 0 {
				return dst, errNull
			}
			return appendLong(dst, int64(nullIndex)), nil
		}
		if typIndex >= 0 {
			dst = appendLong(dst, int64(typIndex))
		}
		return enc(dst, v)
	}, nil
}

var errExprType = errors.New("the expression gave a value of another type than the field's")

// celEncoder returns the encoder of non-null results for an Avro type, and the
// CEL kinds it accepts.
func celEncoder(t avro.Schema) (func(dst []byte, v ref.Val) ([]byte, error), []types.Kind) {
	logical := logicalType(t)
	switch {
	case t.Type() == avro.String:
		return func(dst []byte, v ref.Val) ([]byte, error) {
			s, ok := v.(types.String)
			if !ok {
				return dst, errExprType
			}
			return appendBytes(dst, []byte(s)), nil
		}, []types.Kind{types.StringKind}
	case t.Type() == avro.Boolean:
		return func(dst []byte, v ref.Val) ([]byte, error) {
			b, ok := v.(types.Bool)
			if !ok {
				return dst, errExprType
			}
			return appendBool(dst, bool(b)), nil
		}, []types.Kind{types.BoolKind}
	case (t.Type() == avro.Int || t.Type() == avro.Long) && logical == "":
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if t.Type() == avro.Int {
			lo, hi = math.MinInt32, math.MaxInt32
		}
		return func(dst []byte, v ref.Val) ([]byte, error) {
			var n int64
			switch x := v.(type) {
			case types.Int:
				n = int64(x)
			case types.Uint:
				if uint64(x) > uint64(hi) {
					return dst, fmt.Errorf("%d is out of the range of %s", uint64(x), t)
				}
				n = int64(x)
			default:
				return dst, errExprType
			}
			if n < lo || n > hi {
				return dst, fmt.Errorf("%d is out of the range of %s", n, t)
			}
			return appendLong(dst, n), nil
		}, []types.Kind{types.IntKind, types.UintKind}
	case (t.Type() == avro.Double || t.Type() == avro.Float) && logical == "":
		single := t.Type() == avro.Float
		return func(dst []byte, v ref.Val) ([]byte, error) {
			var f float64
			switch x := v.(type) {
			case types.Double:
				f = float64(x)
			case types.Int:
				f = float64(x)
			default:
				return dst, errExprType
			}
			if single {
				return appendFloat(dst, float32(f)), nil
			}
			return appendDouble(dst, f), nil
		}, []types.Kind{types.DoubleKind, types.IntKind}
	case t.Type() == avro.Bytes && logical == "":
		return func(dst []byte, v ref.Val) ([]byte, error) {
			b, ok := v.(types.Bytes)
			if !ok {
				return dst, errExprType
			}
			return appendBytes(dst, b), nil
		}, []types.Kind{types.BytesKind}
	case logical == avro.Decimal:
		p, s := decimalOf(t)
		dec := decimalEncoder(t, p, s)
		return func(dst []byte, v ref.Val) ([]byte, error) {
			var text []byte
			switch x := v.(type) {
			case types.String:
				text = []byte(x)
			case types.Int:
				text = fmt.Appendf(nil, "%d", int64(x))
			case types.Uint:
				text = fmt.Appendf(nil, "%d", uint64(x))
			default:
				return dst, errExprType
			}
			d := cdc.Decimal(text)
			return dec(dst, &d)
		}, []types.Kind{types.StringKind, types.IntKind, types.UintKind}
	case logical == avro.TimestampMicros || logical == avro.LocalTimestampMicros ||
		logical == avro.TimestampMillis || logical == avro.LocalTimestampMillis:
		millis := logical == avro.TimestampMillis || logical == avro.LocalTimestampMillis
		return func(dst []byte, v ref.Val) ([]byte, error) {
			ts, ok := v.(types.Timestamp)
			if !ok {
				return dst, errExprType
			}
			if millis {
				return appendLong(dst, ts.UnixMilli()), nil
			}
			return appendLong(dst, ts.UnixMicro()), nil
		}, []types.Kind{types.TimestampKind}
	case logical == avro.Date:
		return func(dst []byte, v ref.Val) ([]byte, error) {
			ts, ok := v.(types.Timestamp)
			if !ok {
				return dst, errExprType
			}
			days := ts.Unix() / 86400
			if ts.Unix() < 0 && ts.Unix()%86400 != 0 {
				days--
			}
			return appendLong(dst, days), nil
		}, []types.Kind{types.TimestampKind}
	case logical == avro.TimeMicros || logical == avro.TimeMillis:
		millis := logical == avro.TimeMillis
		return func(dst []byte, v ref.Val) ([]byte, error) {
			d, ok := v.(types.Duration)
			if !ok {
				return dst, errExprType
			}
			if d.Duration < 0 || d.Duration >= 24*time.Hour {
				return dst, fmt.Errorf("%s is not a time of day", d.Duration)
			}
			if millis {
				return appendLong(dst, d.Milliseconds()), nil
			}
			return appendLong(dst, d.Microseconds()), nil
		}, []types.Kind{types.DurationKind}
	case t.Type() == avro.Enum:
		es := t.(*avro.EnumSchema)
		symbols := es.Symbols()
		return func(dst []byte, v ref.Val) ([]byte, error) {
			s, ok := v.(types.String)
			if !ok {
				return dst, errExprType
			}
			i := slices.Index(symbols, string(s))
			if i < 0 {
				return dst, &unmappedError{code: string(s), enum: es}
			}
			return appendLong(dst, int64(i)), nil
		}, []types.Kind{types.StringKind}
	}
	return nil, nil
}

// readableTypes renders CEL's names of nullable types ("wrapper(int)",
// "wrapper(google.protobuf.Timestamp)") as users declare them.
func readableTypes(text string) string {
	text = strings.NewReplacer("google.protobuf.Timestamp", "timestamp", "google.protobuf.Duration", "duration").Replace(text)
	return wrapperType.ReplaceAllString(text, "nullable $1")
}

var wrapperType = regexp.MustCompile(`wrapper\(([a-z_]+)\)`)

func kindNames(kinds []types.Kind) string {
	names := map[types.Kind]string{types.StringKind: "string", types.BoolKind: "bool", types.IntKind: "int",
		types.UintKind: "uint", types.DoubleKind: "double", types.BytesKind: "bytes",
		types.TimestampKind: "timestamp", types.DurationKind: "duration"}
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = names[k]
	}
	return strings.Join(out, " or ")
}
