// Command metabase-bot-demo shows metabase-bot at work without a Slack workspace or a Metabase.
// It starts the project's fake Slack (bot/slacktest) and fake Metabase (metabase/metabasetest)
// in this process on loopback, with a few people and users in them, runs the real bot against
// them, wired as cmd/metabase-bot wires it, and lets you type as one of the people:
//
//	as alice: /metabase disable jane@example.com Left the company
//	as bob: approve
//
// After each line it waits until the bot has finished reacting and prints what changed in Slack:
// cards (with a Block Kit Builder link to see their real look), thread replies, audit lines and
// the replies only the person sees. It is a separate binary so the production one never
// imports a fake.
//
// Usage:
//
//	go run ./cmd/metabase-bot-demo [-script FILE] [-v] [-log FILE] [-json] [-approvals N] [-timeout D]
//
// Without -script it reads the terminal, or any input piped to it. Type help for the commands.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// options are the demo's flags.
type options struct {
	script    string
	verbose   bool
	logFile   string
	json      bool
	approvals int
	timeout   time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("metabase-bot-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.script, "script", "", "read the lines to run from `FILE` instead of standard input")
	fs.BoolVar(&o.verbose, "v", false, "show the bot's logs on standard error")
	fs.StringVar(&o.logFile, "log", "", "append the bot's logs to `FILE`")
	fs.BoolVar(&o.json, "json", false, "print each card's Block Kit JSON too")
	fs.IntVar(&o.approvals, "approvals", 1, "how many approvals a request needs (REQUIRED_APPROVALS)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "how long to wait for the bot after each line")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: go run ./cmd/metabase-bot-demo [flags]\n\nRuns the real metabase-bot against an in-process fake Slack and fake Metabase; type help once it runs.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.approvals < 1 {
		return o, errors.New("-approvals must be at least 1")
	}
	if o.timeout <= 0 {
		return o, errors.New("-timeout must be positive")
	}
	return o, nil
}

// run is the whole demo, callable from tests: it returns the exit code. Lines come from stdin or
// the -script file. With a script, or input that is not a terminal, each line is echoed after
// "> " so the output reads as a transcript, and the first line the demo cannot carry out stops
// it with exit code 1.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "metabase-bot-demo:", err)
		return 2
	}
	in, interactive := stdin, isTerminal(stdin)
	if o.script != "" {
		f, err := os.Open(o.script)
		if err != nil {
			fmt.Fprintln(stderr, "metabase-bot-demo:", err)
			return 2
		}
		defer f.Close()
		in, interactive = f, false
	}
	log, closeLog, err := newLogger(o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "metabase-bot-demo:", err)
		return 2
	}
	defer closeLog()

	w := newWorld()
	defer w.close()
	rb, err := startBot(ctx, w, o.approvals, log)
	if err != nil {
		fmt.Fprintln(stderr, "metabase-bot-demo: start the bot:", err)
		return 1
	}
	s := newSession(w, rb, stdout, o.json, o.timeout)
	fmt.Fprintf(stdout, "metabase-bot demo: the real bot, connected to a fake Slack (%s) and a fake Metabase (%s), both in this process.\n", w.slack.URL(), w.mb.URL())
	s.printPeople()
	fmt.Fprintln(stdout, "Type help for what you can do.")

	code := s.loop(ctx, in, interactive)
	if err := rb.close(); err != nil {
		fmt.Fprintln(stderr, "metabase-bot-demo: stop the bot:", err)
		code = max(code, 1)
	}
	return code
}

// loop runs lines until quit, end of input or ctx's end, and returns the exit code.
func (s *session) loop(ctx context.Context, in io.Reader, interactive bool) int {
	lines := make(chan string)
	// The reader may stay blocked on a terminal after ctx ends; the process is ending then.
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		if interactive {
			fmt.Fprint(s.out, "> ")
		}
		var line string
		var ok bool
		select {
		case <-ctx.Done():
			fmt.Fprintln(s.out)
			return 0
		case line, ok = <-lines:
		}
		if !ok {
			return 0
		}
		if !interactive {
			// A transcript: the lines run after "> ", and the script's comments and blank lines
			// as they are, to keep its story.
			if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
				fmt.Fprintln(s.out, t)
				continue
			}
			fmt.Fprintln(s.out, "> "+line)
		}
		quit, err := s.exec(ctx, line)
		if err != nil {
			fmt.Fprintln(s.out, "demo:", err)
			if !interactive {
				return 1
			}
		}
		if quit {
			return 0
		}
	}
}

// isTerminal reports whether r is a character device (a terminal) rather than a pipe or file.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newLogger is the bot's logger: silent unless -v (standard error) or -log FILE asks for it,
// since the demo's own output is the point.
func newLogger(o options, stderr io.Writer) (*logrus.Logger, func(), error) {
	l := logrus.New()
	l.Out = io.Discard
	l.Formatter = &logrus.TextFormatter{FullTimestamp: true}
	closer := func() {}
	var outs []io.Writer
	if o.verbose {
		outs = append(outs, stderr)
	}
	if o.logFile != "" {
		f, err := os.OpenFile(o.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, err
		}
		outs = append(outs, f)
		closer = func() { _ = f.Close() }
	}
	if len(outs) > 0 {
		l.Out = io.MultiWriter(outs...)
		l.Level = logrus.DebugLevel
	}
	return l, closer, nil
}
