package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestReportGoesToStdoutUnlessOut(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	o, err := parseFlags(nil, "", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.out != "" {
		t.Fatalf("default -out = %q; a plain run must not overwrite a file", o.out)
	}
	var stdout bytes.Buffer
	if err := writeReport(o.out, &stdout, "# report\n"); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "# report\n" {
		t.Errorf("stdout = %q, want the report", stdout.String())
	}

	path := filepath.Join(t.TempDir(), "docs", "benchmarks.md")
	o, err = parseFlags([]string{"-out", path, "-n", "10"}, "", &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if o.out != path || o.n != 10 {
		t.Fatalf("parsed %+v", o)
	}
	stdout.Reset()
	if err := writeReport(o.out, &stdout, "# report\n"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "# report\n" {
		t.Errorf("report file = %q, %v", b, err)
	}
	if stdout.Len() != 0 {
		t.Errorf("with -out the report also went to stdout: %q", stdout.String())
	}
}

func TestParseFlagsRefusesStrayArguments(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	// `go run ./bench docs/benchmarks.md` (the path without -out) must not silently write stdout.
	if _, err := parseFlags([]string{"docs/benchmarks.md"}, "", &stderr); err == nil {
		t.Error("a stray argument was accepted")
	}
	if o, err := parseFlags(nil, "postgres://u@h/db", &stderr); err != nil || o.pg != "postgres://u@h/db" {
		t.Errorf("TEST_DATABASE_URL is not the -pg default: %+v, %v", o, err)
	}
	// Without -before only this tree is measured; with it, the named commit too.
	if o, err := parseFlags(nil, "", &stderr); err != nil || o.before != "" {
		t.Errorf("default -before = %q, %v; want none", o.before, err)
	}
	if o, err := parseFlags([]string{"-before", "819e55d"}, "", &stderr); err != nil || o.before != "819e55d" {
		t.Errorf("-before 819e55d parsed as %+v, %v", o, err)
	}
}
