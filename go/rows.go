package pgpool

import (
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"time"
	"unsafe"
)

/*
#include "gp.h"
*/
import "C"

// Rows is the result of Query: read it with Next and Scan, then Close it. The rows are held
// in memory (the connection went back to the pool when the query returned).
type Rows struct {
	st      *execState
	row     int64 // current row, -1 before the first Next
	fetched int64 // the row decoded in st.cells, -1 for none
	nrows   int64
	ncols   int
	tag     CommandTag
	err     error
	cols    []string
}

func newRows(st *execState, finalizer bool) *Rows {
	if st.meta.described == 0 {
		st.redescribe()
	}
	r := &Rows{st: st, row: -1, fetched: -1, nrows: int64(st.meta.nrows), ncols: int(st.meta.ncols),
		tag: CommandTag{rows: int64(st.meta.affected)}}
	if st.meta.prefetched != 0 {
		r.fetched = 0
	}
	if finalizer {
		runtime.SetFinalizer(r, (*Rows).Close)
	}
	return r
}

// Next advances to the next row; false at the end (the rows are then closed) or on error.
func (r *Rows) Next() bool {
	if r.st == nil || r.err != nil {
		return false
	}
	r.row++
	if r.row >= r.nrows {
		r.Close()
		return false
	}
	if r.fetched != r.row {
		r.st.fetch(uint64(r.row))
		r.fetched = r.row
	}
	return true
}

// Close gives the rows' memory back; calling it again is a no-op.
func (r *Rows) Close() {
	if r.st == nil {
		return
	}
	putState(r.st)
	r.st = nil
	runtime.SetFinalizer(r, nil)
}

// Err is the error that ended the iteration, if any.
func (r *Rows) Err() error { return r.err }

// CommandTag is the statement's outcome (its row count).
func (r *Rows) CommandTag() CommandTag { return r.tag }

// Columns are the result's column names.
func (r *Rows) Columns() []string {
	if r.cols == nil && r.st != nil {
		r.cols = r.st.columnNames()
	}
	return r.cols
}

// ColumnTypeNames are the columns' type names ("int4", "text", ...).
func (r *Rows) ColumnTypeNames() []string {
	if r.st == nil {
		return nil
	}
	return r.st.columnTypeNames()
}

// ColumnTypeOIDs are the columns' type OIDs.
func (r *Rows) ColumnTypeOIDs() []uint32 {
	if r.st == nil {
		return nil
	}
	out := make([]uint32, r.ncols)
	for i := range out {
		out[i] = uint32(r.st.types[i])
	}
	return out
}

func (r *Rows) current() error {
	if r.st == nil || r.row < 0 || r.row >= r.nrows {
		return fmt.Errorf("pgpool: Scan called without a successful Next")
	}
	return nil
}

// Scan copies the current row's columns into dest: pointers to int, int8..int64, uint..,
// float32/64, bool, string, []byte, time.Time, any, a sql.Scanner (sql.NullInt64, ...), or
// a pointer to one of those pointers (set to nil for NULL; a []byte is set to nil too). A nil dest skips its column.
func (r *Rows) Scan(dest ...any) error {
	if err := r.current(); err != nil {
		return err
	}
	if len(dest) != r.ncols {
		return fmt.Errorf("pgpool: Scan got %d destinations for %d columns", len(dest), r.ncols)
	}
	for i, d := range dest {
		if d == nil {
			continue
		}
		if err := scanCell(&r.st.cells[i], uint32(r.st.types[i]), d); err != nil {
			return scanError(i, err)
		}
	}
	return nil
}

// Values returns the current row as Go values (nil for NULL; see Scan into *any).
func (r *Rows) Values() ([]any, error) {
	if err := r.current(); err != nil {
		return nil, err
	}
	out := make([]any, r.ncols)
	for i := range out {
		v, err := cellValue(&r.st.cells[i], uint32(r.st.types[i]))
		if err != nil {
			return nil, scanError(i, err)
		}
		out[i] = v
	}
	return out, nil
}

// DriverValues fills dest with database/sql driver values (int64, float64, bool, string,
// []byte, time.Time or nil) for the current row.
func (r *Rows) DriverValues(dest []driver.Value) error {
	if err := r.current(); err != nil {
		return err
	}
	for i := 0; i < r.ncols && i < len(dest); i++ {
		v, err := cellValue(&r.st.cells[i], uint32(r.st.types[i]))
		if err != nil {
			return scanError(i, err)
		}
		dest[i] = v
	}
	return nil
}

// Row is the result of QueryRow.
type Row struct {
	rows *Rows
	err  error
}

// Scan copies the first row into dest (as Rows.Scan) and returns ErrNoRows when there was
// none.
func (r *Row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	rows := r.rows
	defer rows.Close()
	if !rows.Next() {
		if rows.Err() != nil {
			return rows.Err()
		}
		return ErrNoRows
	}
	return rows.Scan(dest...)
}

const (
	oidBool      = 16
	oidBytea     = 17
	oidInt8      = 20
	oidInt2      = 21
	oidInt4      = 23
	oidFloat4    = 700
	oidDate      = 1082
	oidTimestamp = 1114
)

func cellText(c *C.gp_cell) string {
	if c.n == 0 {
		return ""
	}
	return string(unsafe.Slice((*byte)(unsafe.Pointer(c.p)), int(c.n)))
}

func cellBytes(c *C.gp_cell) []byte {
	out := make([]byte, int(c.n))
	if c.n > 0 {
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(c.p)), int(c.n)))
	}
	return out
}

func cellErr(c *C.gp_cell) error {
	code := Code(c.code)
	return &Error{Code: code, Category: code.String(), Message: "reading the value failed: " + code.String()}
}

func cellTimeValue(c *C.gp_cell, oid uint32) (time.Time, error) {
	us := int64(c.i)
	if us == math.MaxInt64 || us == math.MinInt64 {
		return time.Time{}, fmt.Errorf("cannot represent an infinite timestamp as time.Time")
	}
	t := time.UnixMicro(us)
	if oid == oidTimestamp {
		return t.UTC(), nil
	}
	return t, nil
}

// cellValue is the natural Go value of a cell: int64, float64, bool, string, []byte,
// time.Time or nil.
func cellValue(c *C.gp_cell, oid uint32) (any, error) {
	switch c.kind {
	case kindNull:
		return nil, nil
	case kindInt:
		return int64(c.i), nil
	case kindFloat:
		return float64(c.f), nil
	case kindBool:
		return c.i != 0, nil
	case kindBytes:
		return cellBytes(c), nil
	case kindTime:
		return cellTimeValue(c, oid)
	case kindText:
		if oid == oidDate {
			if t, err := time.Parse("2006-01-02", cellText(c)); err == nil {
				return t, nil
			}
		}
		return cellText(c), nil
	}
	return nil, cellErr(c)
}

func scanCell(c *C.gp_cell, oid uint32, dest any) error {
	if c.kind == kindError {
		return cellErr(c)
	}
	null := c.kind == kindNull
	// The common destinations first, without reflection.
	switch d := dest.(type) {
	case *int64:
		if c.kind == kindInt && !null {
			*d = int64(c.i)
			return nil
		}
	case *int32:
		if c.kind == kindInt && int64(c.i) >= math.MinInt32 && int64(c.i) <= math.MaxInt32 {
			*d = int32(c.i)
			return nil
		}
	case *int:
		if c.kind == kindInt {
			*d = int(c.i)
			return nil
		}
	case *string:
		if c.kind == kindText {
			*d = cellText(c)
			return nil
		}
	case *float64:
		if c.kind == kindFloat {
			*d = float64(c.f)
			return nil
		}
	case *bool:
		if c.kind == kindBool {
			*d = c.i != 0
			return nil
		}
	case *[]byte:
		if null {
			*d = nil
			return nil
		}
		if c.kind == kindBytes || c.kind == kindText {
			*d = cellBytes(c)
			return nil
		}
	case *any:
		v, err := cellValue(c, oid)
		if err != nil {
			return err
		}
		*d = v
		return nil
	case sql.Scanner:
		v, err := cellValue(c, oid)
		if err != nil {
			return err
		}
		return d.Scan(v)
	}
	rv := reflect.ValueOf(dest)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("destination %T is not a non-nil pointer", dest)
	}
	ev := rv.Elem()
	if ev.Kind() == reflect.Pointer {
		if null {
			ev.Set(reflect.Zero(ev.Type()))
			return nil
		}
		nv := reflect.New(ev.Type().Elem())
		if err := scanCell(c, oid, nv.Interface()); err != nil {
			return err
		}
		ev.Set(nv)
		return nil
	}
	if null {
		return fmt.Errorf("cannot scan NULL into %T", dest)
	}
	v, err := cellValue(c, oid)
	if err != nil {
		return err
	}
	return assign(ev, v, dest)
}

// assign converts a cell's value v into ev (the element dest points to).
func assign(ev reflect.Value, v any, dest any) error {
	if t, ok := v.(time.Time); ok {
		if ev.Type() == reflect.TypeOf(time.Time{}) {
			ev.Set(reflect.ValueOf(t))
			return nil
		}
		if ev.Kind() == reflect.String {
			ev.SetString(t.Format(time.RFC3339Nano))
			return nil
		}
		return fmt.Errorf("cannot scan a timestamp into %T", dest)
	}
	switch ev.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case string:
			p, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return fmt.Errorf("cannot scan %q into %T", x, dest)
			}
			n = p
		case float64:
			if x != math.Trunc(x) {
				return fmt.Errorf("cannot scan %v into %T without loss", x, dest)
			}
			n = int64(x)
		default:
			return fmt.Errorf("cannot scan %T into %T", v, dest)
		}
		if ev.OverflowInt(n) {
			return fmt.Errorf("%d overflows %T", n, dest)
		}
		ev.SetInt(n)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var n uint64
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return fmt.Errorf("%d overflows %T", x, dest)
			}
			n = uint64(x)
		case string:
			p, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return fmt.Errorf("cannot scan %q into %T", x, dest)
			}
			n = p
		default:
			return fmt.Errorf("cannot scan %T into %T", v, dest)
		}
		if ev.OverflowUint(n) {
			return fmt.Errorf("%d overflows %T", n, dest)
		}
		ev.SetUint(n)
		return nil
	case reflect.Float32, reflect.Float64:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		case string:
			p, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return fmt.Errorf("cannot scan %q into %T", x, dest)
			}
			f = p
		default:
			return fmt.Errorf("cannot scan %T into %T", v, dest)
		}
		ev.SetFloat(f)
		return nil
	case reflect.Bool:
		switch x := v.(type) {
		case bool:
			ev.SetBool(x)
			return nil
		case string:
			b, err := strconv.ParseBool(x)
			if err == nil {
				ev.SetBool(b)
				return nil
			}
		}
		return fmt.Errorf("cannot scan %T into %T", v, dest)
	case reflect.String:
		switch x := v.(type) {
		case string:
			ev.SetString(x)
		case []byte:
			ev.SetString(string(x))
		case int64:
			ev.SetString(strconv.FormatInt(x, 10))
		case float64:
			ev.SetString(strconv.FormatFloat(x, 'g', -1, 64))
		case bool:
			ev.SetString(strconv.FormatBool(x))
		}
		return nil
	case reflect.Slice:
		if ev.Type().Elem().Kind() == reflect.Uint8 {
			switch x := v.(type) {
			case []byte:
				ev.SetBytes(x)
			case string:
				ev.SetBytes([]byte(x))
			default:
				return fmt.Errorf("cannot scan %T into %T", v, dest)
			}
			return nil
		}
	}
	return fmt.Errorf("cannot scan %T into %T", v, dest)
}
