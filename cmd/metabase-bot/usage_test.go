package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpPrintsUsage(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h", "help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), []string{arg}, nil, &stdout, &stderr); code != 0 {
				t.Fatalf("%s exited %d; stderr: %s", arg, code, stderr.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("%s wrote to stderr: %q", arg, stderr.String())
			}
			out := stdout.String()
			for _, want := range []string{"metabase-bot  ", "run the bot", "metabase-bot version", "metabase-bot check", "metabase-bot healthcheck", "metabase-bot help", "README"} {
				if !strings.Contains(out, want) {
					t.Errorf("usage lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestUnknownCommandShowsUsage(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"frobnicate"}, nil, &stdout, &stderr); code != 2 {
		t.Fatalf("unknown command exited %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown command "frobnicate"`) || !strings.Contains(stderr.String(), "metabase-bot healthcheck") {
		t.Errorf("stderr does not name the command and show the usage:\n%s", stderr.String())
	}
}
