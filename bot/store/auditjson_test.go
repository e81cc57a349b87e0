package store

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAuditCanonicalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      any
		want    string
		wantErr string
	}{
		{name: "sorted, compact", in: json.RawMessage(" {\"b\": 1, \"a\" : [true, null, {\"y\":2,\"x\":1}]}\n"),
			want: `{"a":[true,null,{"x":1,"y":2}],"b":1}`},
		// The expected string is what Python's json.dumps(sort_keys=True, separators=(",",":"),
		// ensure_ascii=False) prints for the same value: another implementation agrees.
		{name: "escapes as RFC 8785", in: json.RawMessage(`{"b":1,"a":[true,null,"x\u2028\"\n\u0001\u00e9"],"\u00e9":2,"Z":-3}`),
			want: "{\"Z\":-3,\"a\":[true,null,\"x\u2028\\\"\\n\\u0001\u00e9\"],\"b\":1,\"\u00e9\":2}"},
		{name: "no HTML escaping", in: map[string]string{"detail": "<a&b>"}, want: `{"detail":"<a&b>"}`},
		{name: "short escapes", in: map[string]string{"s": "\b\f\t\r\x1f\x7f"}, want: `{"s":"\b\f\t\r\u001f` + "\x7f" + `"}`},
		{name: "struct", in: struct {
			RequestID string `json:"request_id"`
			UserID    int64  `json:"user_id"`
			DryRun    bool   `json:"dry_run"`
		}{"R1", 42, true}, want: `{"dry_run":true,"request_id":"R1","user_id":42}`},
		{name: "minus zero", in: json.RawMessage(`{"n":-0}`), want: `{"n":0}`},
		{name: "largest safe integer", in: json.RawMessage(`{"n":-9007199254740991}`), want: `{"n":-9007199254740991}`},
		// RFC 8785 §3.2.3: UTF-16 code units, so U+1F600 (D83D DE00) sorts before U+FB01.
		{name: "utf-16 key order", in: json.RawMessage("{\"\uFB01\":1,\"\U0001F600\":2}"), want: "{\"\U0001F600\":2,\"\uFB01\":1}"},
		{name: "fraction", in: json.RawMessage(`{"n":1.5}`), wantErr: "$.n: number 1.5 is not an integer"},
		{name: "exponent", in: json.RawMessage(`{"a":[{"n":1e3}]}`), wantErr: "$.a[0].n: number 1e3 is not an integer"},
		{name: "too large", in: json.RawMessage(`{"n":9007199254740992}`), wantErr: "outside ±(2^53−1)"},
		{name: "duplicate member", in: json.RawMessage(`{"a":1,"a":2}`), wantErr: `duplicate member "a"`},
		{name: "not an object", in: json.RawMessage(`[1]`), wantErr: "must be a JSON object"},
		{name: "trailing data", in: json.RawMessage(`{} {}`), wantErr: "after the top-level object"},
		{name: "invalid", in: json.RawMessage(`{"a":}`), wantErr: "canonical JSON"},
		{name: "invalid utf-8", in: []byte("{\"a\":\"\xff\"}"), wantErr: "not valid UTF-8"},
		{name: "too deep", in: json.RawMessage(`{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`), wantErr: "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalJSON(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CanonicalJSON = %s, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("CanonicalJSON: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("CanonicalJSON =\n%s\nwant\n%s", got, tt.want)
			}
			if err := checkCanonical(got); err != nil {
				t.Errorf("the canonical form is not accepted as canonical: %v", err)
			}
			again, err := CanonicalJSON(got)
			if err != nil || string(again) != string(got) {
				t.Errorf("canonicalising twice changed it: %s, %v", again, err)
			}
		})
	}
}

func TestAuditCheckCanonicalRefusesOtherSpellings(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{"b":1,"a":2}`, `{"a": 1}`, `{"a":"\u0041"}`, `{"a":"<"}` + "\n", `{"a":"\u003c"}`} {
		if err := checkCanonical([]byte(in)); err == nil {
			t.Errorf("checkCanonical(%s) accepted a non-canonical spelling", in)
		}
	}
}

// TestAuditHashDefinition pins the documented byte encoding: the expected value was computed
// with coreutils, not with this package:
//
//	printf '%s\n%d\n%d\n%s' 0000…0000 1 1741000000000 '{"action":"disable","request_id":"R1"}' | sha256sum
func TestAuditHashDefinition(t *testing.T) {
	t.Parallel()
	got := AuditHash(GenesisHash, 1, time.UnixMilli(1741000000000), []byte(`{"action":"disable","request_id":"R1"}`))
	if want := "ded2a498ba9793454f2938fe7ec94995c4a171ee79b961324d94ce318f0fa3da"; got != want {
		t.Fatalf("AuditHash = %s, want %s (docs/audit.md defines the encoding)", got, want)
	}
}

func TestAuditParseCheckpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    AuditCheckpoint
		wantErr bool
	}{
		{in: "42:3F9A1C2E", want: AuditCheckpoint{Seq: 42, Hash: "3f9a1c2e"}},
		{in: "#42:" + strings.Repeat("ab", 32), want: AuditCheckpoint{Seq: 42, Hash: strings.Repeat("ab", 32)}},
		{in: "42", wantErr: true},
		{in: "0:3f9a1c2e", wantErr: true},
		{in: "x:3f9a1c2e", wantErr: true},
		{in: "42:3f9a1c2", wantErr: true},
		{in: "42:3f9a1c2g", wantErr: true},
		{in: "42:" + strings.Repeat("a", 65), wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseAuditCheckpoint(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAuditCheckpoint(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
