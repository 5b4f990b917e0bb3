package tlsconf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/hashicorp/go-hclog"
)

// fileTag marks the certificates this package caches from files.
const fileTag = "guard-file"

// fileSource keeps one certificate and key pair from disk in certmagic's cache.
type fileSource struct {
	cfg               *certmagic.Config
	cache             *certmagic.Cache
	certFile, keyFile string
	log               hclog.Logger

	mu       sync.Mutex
	seen     [2]os.FileInfo // stats of certFile and keyFile when last read
	certPEM  []byte         // content in service
	keyPEM   []byte
	hash     string // certmagic's cache key of the certificate in service
	lastFail string // error of the last failed reload, logged once
}

// load reads both files and, if their content differs from what is in service, caches the new
// pair in place of the old one.
func (f *fileSource) load(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loadLocked(ctx)
}

func (f *fileSource) loadLocked(ctx context.Context) error {
	// Stat before reading: a change that lands while we read shows up at the next check.
	st, err := statBoth(f.certFile, f.keyFile)
	if err != nil {
		return err
	}
	f.seen = st
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if f.hash != "" && bytes.Equal(certPEM, f.certPEM) && bytes.Equal(keyPEM, f.keyPEM) {
		return nil // touched, not changed
	}
	hash, err := f.cfg.CacheUnmanagedCertificatePEMBytes(ctx, certPEM, keyPEM, []string{fileTag})
	if err != nil {
		return fmt.Errorf("tlsconf: loading %s and %s: %w", f.certFile, f.keyFile, err)
	}
	// The new certificate is in the cache before the old one leaves it: no handshake finds
	// none. (In between, one may still get the old one.)
	if f.hash != "" && f.hash != hash {
		f.cache.Remove([]string{f.hash})
	}
	f.hash, f.certPEM, f.keyPEM = hash, certPEM, keyPEM
	return nil
}

// check reloads the pair if either file's stat changed since it was last read.
func (f *fileSource) check(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := statBoth(f.certFile, f.keyFile)
	if err == nil && sameStat(st[0], f.seen[0]) && sameStat(st[1], f.seen[1]) {
		return
	}
	if err == nil {
		err = f.loadLocked(ctx)
	}
	if err != nil {
		// A pair caught halfway through an update fails here; the update's last write changes a
		// stat again and brings the next attempt. Log each distinct failure once.
		if msg := err.Error(); msg != f.lastFail {
			f.lastFail = msg
			f.log.Warn("certificate files not reloaded; previous certificate stays in service", "error", err)
		}
		return
	}
	f.lastFail = ""
	f.log.Info("certificate files reloaded", "cert_file", f.certFile, "key_file", f.keyFile)
}

// watch checks the files every interval until ctx ends.
func (f *fileSource) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.check(ctx)
		}
	}
}

// statBoth stats both files, following symlinks: a Kubernetes secret volume swaps its ..data
// symlink to a new directory, which changes the identity of the file reached.
func statBoth(certFile, keyFile string) ([2]os.FileInfo, error) {
	var st [2]os.FileInfo
	for i, name := range []string{certFile, keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return st, fmt.Errorf("tlsconf: %w", err)
		}
		st[i] = fi
	}
	return st, nil
}

func sameStat(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
