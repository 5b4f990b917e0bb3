//go:build !amd64 || purego

package xmpp

import "unsafe"

// Without a wide scan (other architectures, or the purego tag), skip runs
// its word loop alone.

var wideSkip = false

func skipStops32(p unsafe.Pointer, n int, set *[4]byte) (int, bool) { return 0, false }
