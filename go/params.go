package pgpool

import (
	"database/sql/driver"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// Parameter tags of the buffer that capi.go's gp_bind decodes.
const (
	tagNull      = 0
	tagBool      = 1
	tagInt16     = 2
	tagInt32     = 3
	tagInt64     = 4
	tagFloat4    = 5
	tagFloat8    = 6
	tagText      = 7
	tagBytea     = 8
	tagTypedText = 9

	oidTimestamptz = 1184
)

func appendInt(buf []byte, v int64) []byte {
	switch {
	case v >= math.MinInt16 && v <= math.MaxInt16:
		return binary.LittleEndian.AppendUint16(append(buf, tagInt16), uint16(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return binary.LittleEndian.AppendUint32(append(buf, tagInt32), uint32(v))
	default:
		return binary.LittleEndian.AppendUint64(append(buf, tagInt64), uint64(v))
	}
}

func appendBytes(buf []byte, tag byte, b []byte) []byte {
	buf = binary.LittleEndian.AppendUint32(append(buf, tag), uint32(len(b)))
	return append(buf, b...)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.LittleEndian.AppendUint32(append(buf, tagText), uint32(len(s)))
	return append(buf, s...)
}

func appendTime(buf []byte, t time.Time) []byte {
	buf = append(buf, tagTypedText)
	buf = binary.LittleEndian.AppendUint32(buf, oidTimestamptz)
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	start := len(buf)
	buf = t.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, 0)
	binary.LittleEndian.PutUint32(buf[at:], uint32(len(buf)-start))
	return buf
}

// appendParam encodes one argument: nil, bool, every int and uint kind, float32/64, string,
// []byte, time.Time, driver.Valuer, pointers to those (nil: NULL) and named types of them.
func appendParam(buf []byte, a any) ([]byte, error) {
	switch v := a.(type) {
	case nil:
		return append(buf, tagNull), nil
	case int:
		return appendInt(buf, int64(v)), nil
	case int64:
		return appendInt(buf, v), nil
	case int32:
		return appendInt(buf, int64(v)), nil
	case int16:
		return appendInt(buf, int64(v)), nil
	case int8:
		return appendInt(buf, int64(v)), nil
	case uint8:
		return appendInt(buf, int64(v)), nil
	case uint16:
		return appendInt(buf, int64(v)), nil
	case uint32:
		return appendInt(buf, int64(v)), nil
	case uint:
		return appendUint(buf, uint64(v)), nil
	case uint64:
		return appendUint(buf, v), nil
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(buf, tagBool, b), nil
	case float64:
		return binary.LittleEndian.AppendUint64(append(buf, tagFloat8), math.Float64bits(v)), nil
	case float32:
		return binary.LittleEndian.AppendUint32(append(buf, tagFloat4), math.Float32bits(v)), nil
	case string:
		return appendString(buf, v), nil
	case []byte:
		if v == nil {
			return append(buf, tagNull), nil
		}
		return appendBytes(buf, tagBytea, v), nil
	case time.Time:
		return appendTime(buf, v), nil
	case driver.Valuer:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return append(buf, tagNull), nil
		}
		val, err := v.Value()
		if err != nil {
			return buf, err
		}
		if _, again := val.(driver.Valuer); again {
			return buf, fmt.Errorf("%T.Value returned a driver.Valuer", v)
		}
		return appendParam(buf, val)
	}
	return appendReflect(buf, a)
}

func appendUint(buf []byte, v uint64) []byte {
	if v <= math.MaxInt64 {
		return appendInt(buf, int64(v))
	}
	return appendString(buf, strconv.FormatUint(v, 10))
}

func appendReflect(buf []byte, a any) ([]byte, error) {
	rv := reflect.ValueOf(a)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return append(buf, tagNull), nil
		}
		return appendParam(buf, rv.Elem().Interface())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt(buf, rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return appendUint(buf, rv.Uint()), nil
	case reflect.Bool:
		return appendParam(buf, rv.Bool())
	case reflect.Float32:
		return appendParam(buf, float32(rv.Float()))
	case reflect.Float64:
		return appendParam(buf, rv.Float())
	case reflect.String:
		return appendString(buf, rv.String()), nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			if rv.IsNil() {
				return append(buf, tagNull), nil
			}
			return appendBytes(buf, tagBytea, rv.Bytes()), nil
		}
	}
	return buf, fmt.Errorf("%w %T", errUnsupported, a)
}
