// Command tgsession is the operator's tool for Telegram sessions kept in
// Redis by github.com/tgsession/redisstore.
//
//	tgsession demo                       workers compete for sessions on an embedded Redis (no setup)
//	tgsession import NAME --string S     import a session string (Hydrogram, Pyrogram, Telethon)
//	tgsession import NAME --file F       import a Hydrogram/Pyrogram .session file
//	tgsession export NAME [--format F]   print a session string, or --file F to write a .session file
//	tgsession ls                         every session: dc, user, peers, owner, lease
//	tgsession show NAME                  one session (the auth key only as its fingerprint)
//	tgsession peers NAME --id/--username/--phone
//	tgsession rm NAME [--yes]            delete a session
//	tgsession unlock NAME [--yes]        revoke a stuck worker's lease (the one shown): the owner is told, a standby takes over once it acknowledges or the lease runs out
//	tgsession workers                    the live fleet workers, their capacity and load
//	tgsession bench [--redis URL]        speed and memory against raw Redis
//
// Every command takes --redis URL (default $REDIS_URL), --prefix and --json;
// run "tgsession help" or "tgsession CMD --help".
//
// For tests, every command also takes a hidden --now (unix seconds or RFC
// 3339): the time the command takes as "now" for the store's clock (username
// expiry, last_update_on, Save) instead of the system clock. The CLI tests pin
// it wherever an outcome depends on the day, and run their time-sensitive
// checks a second time with the clock 30 days ahead (TestCLIClockAhead).
// Lease timing never uses it: leases run on the monotonic clock.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/keyring"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `tgsession: Telegram sessions in Redis

usage: tgsession <command> [flags]

commands:
  demo      several worker processes compete for sessions through the lease; one is
            killed, one frozen, one stopped; prints a timeline and checks the invariants
            (an embedded Redis unless --redis is given)
  import    NAME --string S | --file path/to/name.session [--force]
  export    NAME [--format hydrogram|telethon|pyrogram-legacy] | NAME --file out.session
  ls        every session under the prefix
  show      NAME
  peers     NAME --id N | --username U | --phone P
  rm        NAME [--yes]
  unlock    NAME [--yes] [--force]
  keygen    [--id ID]   print a new keyring line "ID BASE64" (32 random bytes)
  rekey     NAME... | --all [--wait 30s]
            re-encrypt stored auth keys with the keyring's current key (plaintext
            ones too); refuses a session a worker owns unless --wait
  workers   the live fleet workers (package fleet): capacity and sessions held
  registry  rebuild: register again every session whose data exists but whose name the
            registry lost (scans the keyspace; a repair, not a routine)
  bench     [--redis URL] [--duration 1s] [--memory-peers 1000000] [--json]
            the store's speed and memory against raw Redis on the same server

common flags: --redis URL (default $REDIS_URL), --prefix P (default "` + redisstore.DefaultPrefix + `"), --json,
  --keyring PATH (default $TGSESSION_KEYRING): encrypt auth keys at rest (see keygen)

` + connectHelp

// exitError carries an exit code; exit 2 is a usage error.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return exitError{2, fmt.Errorf(format, args...)}
}

// cli is what a command reads and writes, and whether they are terminals.
type cli struct {
	in      io.Reader
	out     io.Writer
	errOut  io.Writer
	inTTY   bool
	outTTY  bool
	command string
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	c := &cli{in: stdin, out: stdout, errOut: stderr, inTTY: isTerminal(stdin), outTTY: isTerminal(stdout), command: args[0]}
	cmds := map[string]func(context.Context, []string) error{
		"demo":        c.demo,
		"demo-worker": c.demoWorker,
		"import":      c.importCmd,
		"export":      c.exportCmd,
		"ls":          c.ls,
		"show":        c.show,
		"peers":       c.peers,
		"rm":          c.rm,
		"unlock":      c.unlock,
		"workers":     c.workers,
		"bench":       c.bench,
		"keygen":      c.keygen,
		"rekey":       c.rekey,
		"registry":    c.registry,
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tgsession: unknown command %s (run tgsession help)\n", excerpt(args[0]))
		return 2
	}
	err := cmd(ctx, args[1:])
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "tgsession %s: %v\n", args[0], err)
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// flags are the flags every command takes.
type flags struct {
	redis   string
	prefix  string
	json    bool
	tls     tlsFiles
	now     nowFlag // hidden: the clock, for tests
	keyring string  // --keyring, default $TGSESSION_KEYRING
	// keys returns the keyring (nil without --keyring); set by flagSet,
	// loaded once.
	keys func() (keyring.KeyProvider, error)
}

// nowFlag is the hidden --now flag: the time the command takes as "now"
// (unix seconds or RFC 3339) instead of the system clock. It exists for tests,
// so that a check on cached usernames (which expire storage.UsernameTTL after
// they were written) does not depend on the day it runs; operators never need
// it. It does not move lease timing, which runs on the monotonic clock.
type nowFlag struct{ t time.Time }

func (n *nowFlag) String() string {
	if n == nil || n.t.IsZero() {
		return ""
	}
	return n.t.UTC().Format(time.RFC3339)
}

func (n *nowFlag) Set(v string) error {
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
		n.t = time.Unix(sec, 0)
		return nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return fmt.Errorf("want unix seconds or RFC 3339 (2006-01-02T15:04:05Z)")
	}
	n.t = t
	return nil
}

// clock returns the command's clock: the system clock unless --now was given.
func (f flags) clock() time.Time {
	if f.now.t.IsZero() {
		return time.Now()
	}
	return f.now.t
}

// hiddenFlags are accepted by every command but not listed in --help.
var hiddenFlags = map[string]bool{"now": true}

func (c *cli) flagSet(f *flags, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(c.command, flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	fs.StringVar(&f.redis, "redis", "", "Redis URL (default $REDIS_URL); see tgsession help")
	fs.StringVar(&f.prefix, "prefix", redisstore.DefaultPrefix, "key prefix (namespace) of the sessions")
	fs.BoolVar(&f.json, "json", false, "print JSON for scripts")
	fs.StringVar(&f.tls.ca, "tls-ca", "", "TLS: trust this CA certificate (PEM file) for the server")
	fs.StringVar(&f.tls.cert, "tls-cert", "", "TLS: client certificate (PEM file), with --tls-key")
	fs.StringVar(&f.tls.key, "tls-key", "", "TLS: client private key (PEM file), with --tls-cert")
	fs.Var(&f.now, "now", "(tests) the time taken as now: unix seconds or RFC 3339")
	// No default value in the flag: -h prints defaults, and
	// $TGSESSION_KEYRING may hold a key by mistake (read in loadKeyring).
	fs.StringVar(&f.keyring, "keyring", "", "keyring file for auth keys encrypted at rest (default $TGSESSION_KEYRING): one \"ID BASE64\" per line, the current key first")
	var ring keyring.KeyProvider
	var ringErr error
	loaded := false
	f.keys = func() (keyring.KeyProvider, error) {
		if !loaded {
			loaded = true
			ring, ringErr = c.loadKeyring(f.keyring)
		}
		return ring, ringErr
	}
	fs.Usage = func() {
		fmt.Fprintf(c.errOut, "usage: tgsession %s %s\n\nflags:\n", c.command, synopsis)
		shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
		shown.SetOutput(c.errOut)
		fs.VisitAll(func(fl *flag.Flag) {
			if !hiddenFlags[fl.Name] {
				shown.Var(fl.Value, fl.Name, fl.Usage)
			}
		})
		shown.PrintDefaults()
	}
	return fs
}

// loadKeyring reads a keyring file ("" is none), warning when others may
// read it.
//
// Until the value opened as a file it is treated as a secret (it may be a
// key pasted where a path belongs): a message never repeats it.
func (c *cli) loadKeyring(path string) (keyring.KeyProvider, error) {
	from := "--keyring"
	if path == "" {
		path, from = os.Getenv("TGSESSION_KEYRING"), "$TGSESSION_KEYRING"
	}
	if path == "" {
		return nil, nil
	}
	if _, err := os.Stat(path); err != nil {
		reason := err
		var pe *os.PathError
		if errors.As(err, &pe) {
			reason = pe.Err // without the path
		}
		return nil, exitError{2, fmt.Errorf("keyring: the value of %s (%d characters, not shown) does not open as a file: %v; it must name the keyring file (one \"ID BASE64\" per line), never hold a key itself", from, len(path), reason)}
	}
	r, err := keyring.Load(path)
	if err != nil {
		return nil, exitError{2, err}
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(c.errOut, "tgsession: warning: keyring %s is readable by others (mode %04o): chmod 600 it\n", path, fi.Mode().Perm())
	}
	return r, nil
}

// anyPositionals lets parse accept any number of positional arguments.
const anyPositionals = -1

// parse parses flags that may come before or after positional arguments and
// checks the number of positionals (anyPositionals: any number).
func parse(fs *flag.FlagSet, args []string, positionals int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, exitError{2, err}
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if positionals != anyPositionals && len(pos) != positionals {
		return nil, usageErr("want %d argument(s), got %d (%s)\nusage: tgsession %s --help", positionals, len(pos), strings.Join(pos, " "), fs.Name())
	}
	return pos, nil
}
