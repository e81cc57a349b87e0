package storetest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestPostgresURLSkipsWithOneNotice(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	n := &notice{w: &out}
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			postgresURL(t, "storetest_", "", n)
			t.Error("postgresURL returned instead of skipping")
		})
	}
	if got := strings.Count(out.String(), "\n"); got != 1 || !strings.Contains(out.String(), EnvVar) {
		t.Errorf("notice = %q; want one line naming %s", out.String(), EnvVar)
	}
}
