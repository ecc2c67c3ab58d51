package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/jobfs/jobfs/crypt"
	"github.com/jobfs/jobfs/jobs"
)

// loadTrusted reads --trusted-keys at start: nil without the flag; a file
// that cannot be read, has a bad line or holds no key stops the start (an
// empty file would otherwise read as "trust no one" or, worse, as "no
// enforcement").
func loadTrusted(path string, logger *log.Logger) (*jobs.KeyRing, error) {
	if path == "" {
		return nil, nil
	}
	keys, err := crypt.LoadTrusted(path)
	if err != nil {
		return nil, fmt.Errorf("--trusted-keys: %w", err)
	}
	logger.Printf("runs need a signature by one of %d trusted keys (%s; kill -HUP re-reads it)", len(keys), path)
	return jobs.NewKeyRing(keys), nil
}

// watchHUP re-reads the trusted-keys file on every SIGHUP. A file that
// cannot be used keeps the keys in force, and the log says why. Without
// --trusted-keys a SIGHUP is logged and changes nothing (it no longer ends
// the daemon). The returned func stops watching.
func watchHUP(path string, ring *jobs.KeyRing, logger *log.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				reloadTrusted(path, ring, logger)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}

func reloadTrusted(path string, ring *jobs.KeyRing, logger *log.Logger) {
	if ring == nil {
		logger.Printf("SIGHUP: nothing to re-read (started without --trusted-keys)")
		return
	}
	keys, err := crypt.LoadTrusted(path)
	if err != nil {
		logger.Printf("SIGHUP: --trusted-keys not re-read, the %d keys in force stay: %v", len(ring.Keys()), err)
		return
	}
	ring.Set(keys)
	logger.Printf("SIGHUP: re-read --trusted-keys %s: runs need a signature by one of %d trusted keys", path, len(keys))
}
