//go:build amd64 && !purego

package xmpp

import "unsafe"

// The wide scan of skip on amd64: AVX2, 32 bytes per compare, where the
// CPU has it (skip_amd64.s).

// skipStops32 scans p[0:n] for the first byte that stops (see skip_amd64.s).
//
//go:noescape
func skipStops32(p unsafe.Pointer, n int, set *[4]byte) (int, bool)

func hasAVX2() bool

// wideSkip says that skip scans long runs with skipStops32; tests turn it
// off to check the word loop against it.
var wideSkip = hasAVX2()
