package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
)

// command is a subcommand of the binary: one entry here gives it its dispatch and its usage line.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, environ map[string]string, stdout, stderr io.Writer) int
}

// commands are the subcommands besides running the bot, in the order the usage lists them.
var commands = []command{
	{"version", "print the version, commit and Go version", func(_ context.Context, _ []string, _ map[string]string, stdout, _ io.Writer) int {
		fmt.Fprintf(stdout, "metabase-bot %s (commit %s, %s)\n", version, commit, runtime.Version())
		return 0
	}},
	{"check", "check the configuration once against Slack, Metabase and the store; print a checklist, exit 0 when all pass",
		func(ctx context.Context, _ []string, environ map[string]string, stdout, stderr io.Writer) int {
			return runCheck(ctx, environ, stdout, stderr)
		}},
	{"healthcheck", "probe /healthz of the bot running on HTTP_ADDR; exit 0 or 1 (for images without curl)",
		func(ctx context.Context, _ []string, environ map[string]string, _, stderr io.Writer) int {
			return healthcheck(ctx, environ, stderr)
		}},
	{"audit", "verify the audit log's hash chain, or export it for auditors (audit --help; needs only DATABASE_URL)", runAudit},
}

// isHelp reports whether arg asks for the usage.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "--help" || arg == "-help"
}

// printUsage writes the usage: one line per way to run the binary, then where the settings are
// described.
func printUsage(w io.Writer) {
	fmt.Fprintln(w, "metabase-bot disables and re-enables Metabase users after approval in Slack.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  metabase-bot\trun the bot (Socket Mode; configuration from environment variables)")
	for _, c := range commands {
		fmt.Fprintf(tw, "  metabase-bot %s\t%s\n", c.name, c.summary)
	}
	fmt.Fprintln(tw, "  metabase-bot help\tprint this help (also -h or --help)")
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every setting is an environment variable (SLACK_APP_TOKEN, SLACK_BOT_TOKEN, METABASE_URL, …).")
	fmt.Fprintln(w, "See the README for the list and a quick start: https://github.com/metabase-bot/metabase-bot#readme")
}
