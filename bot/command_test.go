package bot

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/metabase-bot/metabase-bot/bot/access"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		want    Command
		wantErr string // substring of the usage message; "" means success
	}{
		{"empty is help", "", Command{Verb: VerbHelp}, ""},
		{"blank is help", " \t\n ", Command{Verb: VerbHelp}, ""},
		{"help", "help", Command{Verb: VerbHelp}, ""},
		{"pending", "Pending", Command{Verb: VerbPending}, ""},
		{"pending takes nothing", "pending jane@example.com", Command{}, "no arguments"},
		{"disable by email", "disable jane@example.com Left the company",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}}, Reason: "Left the company"}, ""},
		{"verb and email are case-insensitive", "DISABLE Jane@Example.COM bye",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByEmail, Email: "jane@example.com", Raw: "Jane@Example.COM"}}, Reason: "bye"}, ""},
		{"disable by id", "disable 42 compromised laptop",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByID, ID: 42, Raw: "42"}}, Reason: "compromised laptop"}, ""},
		{"mailto link", "disable <mailto:jane@example.com|jane@example.com> gone",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}}, Reason: "gone"}, ""},
		{"slack mention with spaced label", "disable <@U123ABC|Jane Doe> parental leave",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByChatUser, ChatUser: "U123ABC", Raw: "@Jane Doe"}}, Reason: "parental leave"}, ""},
		{"a number after an email is ambiguous", "disable jane@example.com 3 months sabbatical", Command{}, "may not start with a number"},
		{"several targets, duplicates once", "disable a@x.io 7 a@x.io <@W1> cleanup",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{
				{Kind: access.ByEmail, Email: "a@x.io", Raw: "a@x.io"}, {Kind: access.ByID, ID: 7, Raw: "7"}, {Kind: access.ByChatUser, ChatUser: "W1", Raw: "<@W1>"}}, Reason: "cleanup"}, ""},
		{"until date", "disable jane@example.com until 2027-01-15 sabbatical",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}}, Until: "2027-01-15", Reason: "sabbatical"}, ""},
		{"no reason parses (policy decides)", "disable 5",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByID, ID: 5, Raw: "5"}}}, ""},
		{"no arguments opens the form", "disable", Command{Verb: VerbDisable}, ""},
		{"disable now is break-glass", "disable now 42 <mailto:a@x.io|a@x.io> stolen laptop",
			Command{Verb: VerbDisable, Now: true, Targets: []access.TargetRef{{Kind: access.ByID, ID: 42, Raw: "42"},
				{Kind: access.ByEmail, Email: "a@x.io", Raw: "a@x.io"}}, Reason: "stolen laptop"}, ""},
		{"NOW in capitals", "Disable NOW 42 odd queries at 3 am",
			Command{Verb: VerbDisable, Now: true, Targets: []access.TargetRef{{Kind: access.ByID, ID: 42, Raw: "42"}}, Reason: "odd queries at 3 am"}, ""},
		{"now after the targets is not a reason", "disable 42 now stolen laptop", Command{}, "`now` goes right after `disable`"},
		{"now alone", "disable now", Command{}, "needs the users and a reason"},
		{"enable now", "enable now 42 back", Command{}, "only goes with `disable`"},
		{"disable now with until", "disable now 42 until 2027-01-15 leave", Command{}, "takes no `until`"},
		{"now later in the reason is a word", "disable 42 left, access removed now",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByID, ID: 42, Raw: "42"}}, Reason: "left, access removed now"}, ""},
		{"an id names its instance", "disable eu:42 prod:7 cleanup",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByID, ID: 42, Instance: "eu", Raw: "eu:42"},
				{Kind: access.ByID, ID: 7, Instance: "prod", Raw: "prod:7"}}, Reason: "cleanup"}, ""},
		{"--instance limits every target", "disable jane@example.com until 2027-01-15 --instance eu Left the EU team",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByEmail, Email: "jane@example.com", Instance: "eu", Raw: "jane@example.com"}},
				Until: "2027-01-15", Instance: "eu", Reason: "Left the EU team"}, ""},
		{"a dash typed for --", "enable 5 —instance eu back",
			Command{Verb: VerbEnable, Targets: []access.TargetRef{{Kind: access.ByID, ID: 5, Instance: "eu", Raw: "5"}}, Instance: "eu", Reason: "back"}, ""},
		{"--instance against an id's own instance", "disable prod:5 --instance eu bye", Command{}, "limits the command to eu"},
		{"--instance without a name", "disable 5 --instance", Command{}, "needs the name of a Metabase instance"},
		{"an invalid qualified id", "disable eu:0 bye", Command{}, "not a valid Metabase user id"},
		{"enable", "enable 5 back from leave",
			Command{Verb: VerbEnable, Targets: []access.TargetRef{{Kind: access.ByID, ID: 5, Raw: "5"}}, Reason: "back from leave"}, ""},
		{"status", "status jane@example.com",
			Command{Verb: VerbStatus, Targets: []access.TargetRef{{Kind: access.ByEmail, Email: "jane@example.com", Raw: "jane@example.com"}}}, ""},
		{"history", "history <@U123ABC|Jane Doe>",
			Command{Verb: VerbHistory, Targets: []access.TargetRef{{Kind: access.ByChatUser, ChatUser: "U123ABC", Raw: "@Jane Doe"}}}, ""},
		{"history by id, verb case-insensitive", "History 42",
			Command{Verb: VerbHistory, Targets: []access.TargetRef{{Kind: access.ByID, ID: 42, Raw: "42"}}}, ""},
		{"history needs a user", "history", Command{}, "`history` takes exactly one user"},
		{"history takes one user", "history a@b.io c@d.io", Command{}, "`history` takes exactly one user"},
		{"history of a bad id", "history -3", Command{}, "not a valid Metabase user id"},
		{"inactive default", "inactive", Command{Verb: VerbInactive, Days: 90}, ""},
		{"inactive days", "inactive 30", Command{Verb: VerbInactive, Days: 30}, ""},
		{"inactive bad days", "inactive -3", Command{}, "1 to 3650"},
		{"unknown verb", "delete jane@example.com", Command{}, `"delete"`},
		{"reason without target", "disable because I said so", Command{}, `"because" is not a user`},
		{"negative id", "disable -5 bad", Command{}, `"-5" is not a valid Metabase user id`},
		{"zero id", "disable 0 bad", Command{}, "not a valid Metabase user id"},
		{"huge id", "disable 99999999999999999999 bad", Command{}, "not a valid Metabase user id"},
		{"invalid email", "disable jane@@example.com x", Command{}, "not a valid email"},
		{"channel ping as target", "disable <!channel> x", Command{}, "is not a user"},
		{"forged mention", "disable <@notanid> x", Command{}, "not a Slack user mention"},
		{"until on enable", "enable 5 until 2027-01-01 x", Command{}, "only goes with `disable`"},
		{"until without date", "disable 5 until", Command{}, "needs a date"},
		{"status needs one user", "status a@b.io c@d.io", Command{}, "exactly one user"},
		{"too long", strings.Repeat("x", 13000), Command{}, "limit is 12000"},
		{"reason too long", "disable 5 " + strings.Repeat("é", 600), Command{}, "limit is 500"},
		{"invalid utf8", "disable 5 \xff", Command{}, "not valid text"},
		// Slack escapes what the person typed; the reason comes back as typed, escaped once on output.
		{"escaped reason comes back as typed", "disable 5 R&amp;D budget &lt;b&gt; &amp;lt;",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByID, ID: 5, Raw: "5"}}, Reason: "R&D budget <b> &lt;"}, ""},
		{"entities in the reason read as typed", "disable 5 ask <@U1|bob> in <#C1|ops> or <mailto:a@b.io|a@b.io>, see <https://x.io/a?b=1&amp;c=2|x.io>",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByID, ID: 5, Raw: "5"}}, Reason: "ask @bob in #ops or a@b.io, see https://x.io/a?b=1&c=2"}, ""},
		{"pings in the reason keep their markup", "disable 5 <!channel> <!subteam^S1|@ops> <@U2>",
			Command{Verb: VerbDisable, Targets: []access.TargetRef{{Kind: access.ByID, ID: 5, Raw: "5"}}, Reason: "<!channel> <!subteam^S1|@ops> <@U2>"}, ""},
		{"an escaped word is quoted as typed", "disable R&amp;D", Command{}, `"R&D" is not a user`},
		{"a typed mention is not a mention", "disable &lt;@U1&gt; x", Command{}, `"<@U1>" is not a valid email`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCommand(tt.text)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("command mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCommandTooManyTargets(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("disable")
	for i := 1; i <= maxTargets+1; i++ {
		b.WriteString(" ")
		b.WriteString(strconv.Itoa(i))
	}
	_, err := ParseCommand(b.String() + " cleanup")
	if err == nil || !strings.Contains(err.Error(), "at most 100") {
		t.Fatalf("err = %v, want the target limit", err)
	}
}

// FuzzParseCommand checks that no input panics, and that whatever parses is within the limits
// the rest of the bot relies on.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"", "help", "disable jane@example.com Left", "disable <@U1|x y> until 2027-01-01 leave",
		"enable 12 back", "status <mailto:a@b.io|a@b.io>", "inactive 30", "disable <!channel> <!here>",
		"disable 5 \u202eevil", "disable -1", "disable <@U1", "<<<>>>", "disable 5 until",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmd, err := ParseCommand(text)
		if err != nil {
			if !errors.Is(err, errUsage) {
				t.Fatalf("non-usage error %v", err)
			}
			if utf8.RuneCountInString(err.Error()) > 300 {
				t.Fatalf("usage message too long: %d runes", utf8.RuneCountInString(err.Error()))
			}
			return
		}
		if len(cmd.Targets) > maxTargets || utf8.RuneCountInString(cmd.Reason) > maxReasonLen {
			t.Fatalf("limits broken: %d targets, %d-rune reason", len(cmd.Targets), utf8.RuneCountInString(cmd.Reason))
		}
		for _, tg := range cmd.Targets {
			switch tg.Kind {
			case access.ByID:
				if tg.ID < 1 {
					t.Fatalf("id %d accepted", tg.ID)
				}
			case access.ByEmail:
				if !emailRe.MatchString(tg.Email) {
					t.Fatalf("email %q accepted", tg.Email)
				}
			case access.ByChatUser:
				if !slackUserRe.MatchString("<@" + tg.ChatUser + ">") {
					t.Fatalf("slack id %q accepted", tg.ChatUser)
				}
			default:
				t.Fatalf("target without kind: %+v", tg)
			}
		}
	})
}

func TestUsageMessagesStayShort(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("\x06", 60)
	for _, text := range []string{
		"status " + long, "disable " + long + "@x.io r", "inactive " + strings.Repeat("9", 3000),
		strings.Repeat("\x01", 200), "disable <@" + long + ">",
	} {
		_, err := ParseCommand(text)
		if err == nil {
			t.Fatalf("%q parsed", text)
		}
		if n := utf8.RuneCountInString(err.Error()); n > 300 {
			t.Errorf("%d-rune message for a hostile word: %.80s…", n, err.Error())
		}
	}
}
