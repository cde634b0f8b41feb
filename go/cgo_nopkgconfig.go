//go:build pgpool_nopkgconfig

package pgpool

// With -tags pgpool_nopkgconfig no flags are added here: set, for example,
//
//	CGO_CFLAGS=-I<repo>/include
//	CGO_LDFLAGS="-L<repo>/target/release -Wl,-rpath,<repo>/target/release -lpgpool"

import "C"
