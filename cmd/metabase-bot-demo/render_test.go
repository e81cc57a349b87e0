package main

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var testRenderer = renderer{
	users:    map[string]string{"UALICE": "alice"},
	groups:   map[string]string{"SAPPROVERS": "metabase-approvers"},
	channels: map[string]string{"COPS": "ops"},
}

func TestMrkdwn(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"user mention", "<@UALICE> asks", "@alice asks"},
		{"unknown user keeps its id", "<@UNOBODY>", "@UNOBODY"},
		{"user group", "from <!subteam^SAPPROVERS>", "from @metabase-approvers"},
		{"user group with handle", "<!subteam^SX|@oncall>", "@oncall"},
		{"channel", "in <#COPS>", "in #ops"},
		{"special mention", "<!here>", "@here"},
		{"date shows its fallback", "expires <!date^1796157272^{date_short_pretty} {time}|2026-12-01 20:34 UTC>", "expires 2026-12-01 20:34 UTC"},
		{"labelled link", "<https://example.com|the docs>", "the docs (https://example.com)"},
		{"bare link", "<https://example.com>", "https://example.com"},
		{"bold", ":white_check_mark: *Approved* by", "✅ Approved by"},
		{"italic", "_no reason given_", "no reason given"},
		{"underscores inside words stay", "first_last@example.com", "first_last@example.com"},
		{"code", "request `MB-ABC`", "request MB-ABC"},
		{"unknown emoji stays", ":tada: done", ":tada: done"},
		{"escaped text stays text", "&lt;@UALICE&gt; &amp; co", "<@UALICE> & co"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testRenderer.mrkdwn(tt.in); got != tt.want {
				t.Errorf("mrkdwn(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestBlocks(t *testing.T) {
	blocks := `[
	{"type":"header","text":{"type":"plain_text","text":"Metabase disable request MB-1"}},
	{"type":"section","text":{"type":"mrkdwn","text":"<@UALICE> asks to *disable*"}},
	{"type":"section","fields":[{"type":"mrkdwn","text":"*Name*\nJane Doe"},{"type":"mrkdwn","text":"*Email*\njane@example.com"},{"type":"mrkdwn","text":"*Admin*\nno"}]},
	{"type":"context","elements":[{"type":"mrkdwn","text":"Request MB-1"},{"type":"plain_text","text":"more"}]},
	{"type":"divider"},
	{"type":"actions","block_id":"b","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"Approve"}},{"type":"static_select","action_id":"s","placeholder":{"type":"plain_text","text":"Pick"}}]},
	{"type":"input","optional":true,"label":{"type":"plain_text","text":"Reason"},"element":{"type":"plain_text_input","action_id":"r","placeholder":{"type":"plain_text","text":"Why?"}}},
	{"type":"image","image_url":"https://example.com/x.png","alt_text":"x"}
]`
	want := []string{
		"METABASE DISABLE REQUEST MB-1",
		"@alice asks to disable",
		"Name: Jane Doe                     Email: jane@example.com",
		"Admin: no",
		"Request MB-1 more",
		"────────",
		"[Approve] [static_select: Pick]",
		"Reason (optional): [text: Why?]",
		"(image block)",
	}
	if diff := cmp.Diff(want, testRenderer.blocks(json.RawMessage(blocks))); diff != "" {
		t.Errorf("blocks (-want +got):\n%s", diff)
	}
}

func TestBlockKitBuilderLinkRoundTrips(t *testing.T) {
	blocks := json.RawMessage(`[ {"type": "section", "text": {"type": "mrkdwn", "text": "a+b & <@U1> 100% #1 · ok?"}} ]`)
	link, err := blockKitBuilderLink(blocks)
	if err != nil {
		t.Fatal(err)
	}
	fragment, ok := strings.CutPrefix(link, builderURL)
	if !ok {
		t.Fatalf("link %q does not start with %s", link, builderURL)
	}
	if strings.ContainsAny(fragment, " #+<>&\"") {
		t.Errorf("fragment has characters a browser or terminal would break on: %s", fragment)
	}
	decoded, err := url.PathUnescape(fragment)
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal([]byte(decoded), &got); err != nil {
		t.Fatalf("fragment is not JSON: %v\n%s", err, decoded)
	}
	_ = json.Unmarshal([]byte(`{"blocks":`+string(blocks)+`}`), &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
