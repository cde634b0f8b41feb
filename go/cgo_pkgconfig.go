//go:build !pgpool_nopkgconfig

package pgpool

// The default build finds libpgpool through pkg-config (pgpool.pc). Build with
// -tags pgpool_nopkgconfig to supply CGO_CFLAGS and CGO_LDFLAGS yourself instead.

// #cgo pkg-config: pgpool
import "C"
