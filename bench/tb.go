package main

import (
	"fmt"
	"log"
	"os"
	"sync"
	"testing"
)

// benchTB lets the test fakes (slacktest.New and metabasetest.New take a testing.TB) run in
// this program. Only the methods the fakes call are implemented; the embedded nil TB makes the
// type satisfy the interface. Production code never imports the fakes; bench/ is not
// production.
type benchTB struct {
	testing.TB
	name string

	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

func newTB(name string) *benchTB { return &benchTB{name: name} }

func (t *benchTB) Helper()      {}
func (t *benchTB) Name() string { return t.name }

func (t *benchTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *benchTB) Logf(format string, args ...any) { log.Printf(t.name+": "+format, args...) }

func (t *benchTB) Errorf(format string, args ...any) {
	log.Printf(t.name+": ERROR: "+format, args...)
}

func (t *benchTB) Fatalf(format string, args ...any) {
	t.close()
	log.Fatalf(t.name+": "+format, args...)
}

func (t *benchTB) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

func (t *benchTB) TempDir() string {
	d, err := os.MkdirTemp("", "metabase-bot-bench-")
	if err != nil {
		log.Fatal(err)
	}
	t.mu.Lock()
	t.dirs = append(t.dirs, d)
	t.mu.Unlock()
	return d
}

// close runs the cleanups, last registered first, and removes temporary directories.
func (t *benchTB) close() {
	t.mu.Lock()
	cs, ds := t.cleanups, t.dirs
	t.cleanups, t.dirs = nil, nil
	t.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	for _, d := range ds {
		_ = os.RemoveAll(d)
	}
}
