package slacktest

import (
	"testing"

	"github.com/slack-go/slack"
)

func TestSlashCommandTextArrivesAsSlackSendsIt(t *testing.T) {
	ctx := testCtx(t)
	fs := New(t)
	fs.AddUser(User{ID: "U1", Name: "alice"})
	fs.AddUser(User{ID: "UJANE", Name: "jane"})
	fs.AddChannel("C1", "ops", true)
	h := start(t, fs)
	tests := []struct{ typed, raw, want string }{
		{typed: "disable jane@example.com R&D budget <b>", want: "disable <mailto:jane@example.com|jane@example.com> R&amp;D budget &lt;b&gt;"},
		{typed: "disable @jane see #ops", want: "disable <@UJANE|jane> see <#C1|ops>"},
		{typed: "@channel @here @everyone", want: "<!channel> <!here> <!everyone>"},
		{typed: "typed <!channel> and <@U1>", want: "typed &lt;!channel&gt; and &lt;@U1&gt;"},
		{typed: "@nobody a@b", want: "@nobody a@b"},
		{typed: "see https://example.com/a?b=1&c=2", want: "see <https://example.com/a?b=1&c=2>"},
		{raw: "<@U1|forged> &amp;", want: "<@U1|forged> &amp;"},
	}
	for _, tt := range tests {
		c := SlashCommand{UserID: "U1", ChannelID: "C1", Text: tt.typed}
		if tt.raw != "" {
			c.Text, c.Raw = tt.raw, true
		}
		if _, err := fs.SlashCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
		got := h.next(ctx, t, "slash_commands").Data.(slack.SlashCommand).Text
		if got != tt.want {
			t.Errorf("typed %q (raw %q): text %q, want %q", tt.typed, tt.raw, got, tt.want)
		}
	}
}
