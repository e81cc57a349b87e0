package main

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// endToEndParallel is how many tests of this package run at once per core when -parallel is not
// given. Most of an end-to-end test's time is spent waiting (for a lease to expire, a reminder to
// fall due, Slack's ack window, a held reply), not computing, so go test's default of one test per
// core (GOMAXPROCS) leaves a 2-core machine idle for most of the run.
const endToEndParallel = 4

// TestMain raises the package's default -parallel; an explicit -parallel (or -test.parallel) wins.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		if err := flag.Set("test.parallel", strconv.Itoa(endToEndParallel*runtime.GOMAXPROCS(0))); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
