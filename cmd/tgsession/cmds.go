package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/filestore"
	"github.com/tgsession/redisstore/fleet"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/sessionstring"
	"github.com/tgsession/redisstore/storage"
)

// noSessionError is the CLI's wording of storage.ErrSessionNotFound, which
// it wraps.
type noSessionError struct{ name, prefix string }

func (e noSessionError) Error() string {
	return fmt.Sprintf("no session %s under prefix %s (tgsession ls lists them)", excerpt(e.name), excerpt(e.prefix))
}

func (e noSessionError) Unwrap() error { return storage.ErrSessionNotFound }

// openSession opens NAME without a lease. existing: fail if it does not exist.
func openSession(ctx context.Context, f flags, name string, existing bool) (*redisstore.Store, redis.UniversalClient, error) {
	client, _, err := connect(f.redis, f.tls)
	if err != nil {
		return nil, nil, exitError{2, err}
	}
	keys, err := f.keys()
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	// Creating is only ever asked by an import, which restores a lost session.
	s, err := redisstore.New(client, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: f.prefix, Clock: f.clock,
		OpenExisting: existing, RecreateLost: !existing, Keys: keys})
	if err != nil {
		client.Close()
		return nil, nil, exitError{2, err}
	}
	if err := s.Open(ctx); err != nil {
		client.Close()
		if errors.Is(err, storage.ErrSessionNotFound) {
			return nil, nil, noSessionError{name, f.prefix}
		}
		return nil, nil, err
	}
	return s, client, nil
}

// withSession parses NAME and the flags (extra adds a command's own), opens
// the existing session without a lease, runs fn, and closes everything.
func (c *cli) withSession(ctx context.Context, args []string, synopsis string, extra func(*flag.FlagSet),
	fn func(f flags, name string, st *redisstore.Store, client redis.UniversalClient) error) error {
	var f flags
	fs := c.flagSet(&f, synopsis)
	if extra != nil {
		extra(fs)
	}
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	st, client, err := openSession(ctx, f, pos[0], true)
	if err != nil {
		return err
	}
	defer client.Close()
	defer st.Close()
	return fn(f, pos[0], st, client)
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// confirm asks on a terminal, or requires --yes.
func (c *cli) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	if !c.inTTY {
		return usageErr("%s: pass --yes to confirm (no terminal to ask on); nothing was changed", question)
	}
	fmt.Fprintf(c.errOut, "%s [y/N] ", question)
	line := readLine(c.in)
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return errors.New("not confirmed; nothing was changed")
	}
	return nil
}

func (c *cli) importCmd(ctx context.Context, args []string) error {
	var f flags
	var str, strFile, file string
	var force bool
	fs := c.flagSet(&f, "NAME --string - | --string-file PATH | --file path/to/name.session [--force]")
	fs.StringVar(&str, "string", "", "a session string (Hydrogram, legacy Pyrogram or Telethon v1); - reads it from stdin (a string given here is visible in ps)")
	fs.StringVar(&strFile, "string-file", "", "read the session string from this file (- is stdin)")
	fs.StringVar(&file, "file", "", "a Hydrogram/Pyrogram .session file (opened read-only, never changed)")
	fs.BoolVar(&force, "force", false, "replace an existing session (atomically, once the input is fully validated)")
	pos, err := parse(fs, args, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	given := 0
	for _, v := range []string{str, strFile, file} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		return usageErr("give exactly one of --string, --string-file or --file")
	}
	// Read and validate everything before connecting: bad input changes nothing.
	var decoded sessionstring.Session
	var src *filestore.Store
	switch {
	case str != "" && str != "-":
		fmt.Fprintln(c.errOut, "warning: a session string on the command line is visible to other users (ps) and kept in shell history; use --string - or --string-file PATH")
	case str == "-" || strFile == "-":
		if str, err = c.readString("stdin", c.in); err != nil {
			return err
		}
	case strFile != "":
		fh, err := os.Open(strFile)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w (nothing was changed)", strFile, err)
		}
		str, err = c.readString(strFile, fh)
		fh.Close()
		if err != nil {
			return err
		}
	}
	if str != "" {
		if decoded, err = sessionstring.Decode(str); err != nil {
			return fmt.Errorf("%w (nothing was changed)", err)
		}
		if _, err = storage.SessionFromString(decoded); err != nil {
			return fmt.Errorf("%w (nothing was changed)", err)
		}
	} else {
		if src, err = openSourceFile(ctx, f, file); err != nil {
			return err
		}
		defer src.Close()
	}
	st, client, err := importTarget(ctx, f, name, force)
	if err != nil {
		return err
	}
	defer client.Close()
	defer st.Close()

	result := map[string]any{"name": name, "prefix": f.prefix}
	if str != "" {
		if _, err := storage.ImportSessionString(ctx, st, str); err != nil {
			return fmt.Errorf("%w (the stored session is as it was)", err)
		}
		result["source"] = decoded.From.String()
		result["carried_user_id"] = decoded.Has(sessionstring.HasUserID)
		result["carried_api_id"] = decoded.Has(sessionstring.HasAPIID)
		if !f.json {
			fmt.Fprintf(c.out, "imported %q from a %v session string (%v)\n", name, decoded.From, decoded)
		}
	} else {
		total, _ := src.PeerCount(ctx)
		n, err := storage.Copy(ctx, st, src, storage.CopyOptions{BatchSize: 1000, Progress: c.progress(total, "peers"), Replace: true})
		c.progressDone(total)
		if err != nil {
			return fmt.Errorf("%w (the stored session is as it was)", err)
		}
		result["source"] = file
		result["peers"] = n
		if !f.json {
			fmt.Fprintf(c.out, "imported %q from %s: session and %d peers\n", name, file, n)
		}
	}
	if f.json {
		return c.printJSON(result)
	}
	return nil
}

// readString reads a session string from r (stdin or a file), bounded.
func (c *cli) readString(what string, r io.Reader) (string, error) {
	if what == "stdin" && c.inTTY {
		fmt.Fprintln(c.errOut, "paste the session string, then press Ctrl-D:")
	}
	b, err := readBounded(r, maxStringInput, what)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", fmt.Errorf("no session string in %s (it was empty; nothing was changed)", what)
	}
	return string(b), nil
}

// openSourceFile opens a .session file to import, read-only (the file is
// never changed), and reads and validates its session row.
func openSourceFile(ctx context.Context, f flags, file string) (*filestore.Store, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w (nothing was changed)", file, err)
	}
	if !fi.Mode().IsRegular() { // a FIFO or a device would block the read, or never end
		return nil, fmt.Errorf("%s is not a regular file (%v): give the path of a .session file (nothing was changed)", file, fi.Mode().Type())
	}
	src := filestore.New(file, filestore.Options{Clock: f.clock, ReadOnly: true})
	if err := src.Open(ctx); err != nil {
		return nil, fmt.Errorf("%s is not a session file Hydrogram or Pyrogram wrote: %w (nothing was changed)", file, err)
	}
	if _, err := src.Session(ctx); err != nil {
		src.Close()
		return nil, fmt.Errorf("%s: bad session row: %w (nothing was changed)", file, err)
	}
	return src, nil
}

// importTarget returns an unfenced store for the session an import writes,
// without creating it: the import replaces the session (or creates it) in
// one atomic step once everything is validated. It refuses an existing
// session without force, and a session a worker owns.
func importTarget(ctx context.Context, f flags, name string, force bool) (*redisstore.Store, redis.UniversalClient, error) {
	client, _, err := connect(f.redis, f.tls)
	if err != nil {
		return nil, nil, exitError{2, err}
	}
	keys, err := f.keys()
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	st, err := redisstore.New(client, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: f.prefix, Clock: f.clock, OpenExisting: true, Keys: keys})
	if err != nil {
		client.Close()
		return nil, nil, exitError{2, err}
	}
	fail := func(err error) (*redisstore.Store, redis.UniversalClient, error) {
		st.Close()
		client.Close()
		return nil, nil, err
	}
	err = st.Open(ctx)
	switch {
	case err == nil && !force:
		return fail(fmt.Errorf("session %s already exists under prefix %s: pass --force to replace it (nothing was changed)", excerpt(name), excerpt(f.prefix)))
	case err != nil && !errors.Is(err, storage.ErrSessionNotFound):
		return fail(err)
	}
	if info, err := lock.Inspect(ctx, client, st.LeaseKey()); err == nil && info.Held {
		return fail(fmt.Errorf("session %s is owned by %v: stop that worker first, or run tgsession unlock NAME (nothing was changed)", excerpt(name), info.Owner))
	}
	return st, client, nil
}

// progress returns a Copy progress callback: a bar on a terminal, plain lines
// (every 10%) otherwise; quiet for small tables.
func (c *cli) progress(total int64, unit string) func(int64) {
	if total < 5000 {
		return nil
	}
	last := int64(-1)
	return func(done int64) {
		pct := done * 100 / max(total, 1)
		if c.outTTY {
			width := int64(30)
			fill := min(width, done*width/max(total, 1))
			fmt.Fprintf(c.errOut, "\r[%s%s] %3d%% %d/%d %s", strings.Repeat("#", int(fill)), strings.Repeat(" ", int(width-fill)), pct, done, total, unit)
			return
		}
		if pct/10 != last/10 {
			last = pct
			fmt.Fprintf(c.errOut, "%d%% (%d/%d %s)\n", pct, done, total, unit)
		}
	}
}

func (c *cli) progressDone(total int64) {
	if c.outTTY && total >= 5000 {
		fmt.Fprintln(c.errOut)
	}
}

// telegramDCs are the production and test DC addresses Telethon uses by default.
var telegramDCs = map[bool]map[int]string{
	false: {1: "149.154.175.53:443", 2: "149.154.167.51:443", 3: "149.154.175.100:443", 4: "149.154.167.91:443", 5: "91.108.56.130:443"},
	true:  {1: "149.154.175.10:443", 2: "149.154.167.40:443", 3: "149.154.175.117:443"},
}

func (c *cli) exportCmd(ctx context.Context, args []string) error {
	var format, file, dcAddr string
	var force bool
	return c.withSession(ctx, args, "NAME [--format hydrogram|telethon|pyrogram-legacy] | NAME --file out.session", func(fs *flag.FlagSet) {
		fs.StringVar(&format, "format", "hydrogram", "string format: hydrogram (also Pyrogram >= 2), telethon, pyrogram-legacy")
		fs.StringVar(&file, "file", "", "write a Hydrogram .session file instead of a string")
		fs.StringVar(&dcAddr, "dc-addr", "", "telethon: the DC's ip:port (default: Telegram's address for the session's DC)")
		fs.BoolVar(&force, "force", false, "overwrite an existing --file")
	}, func(f flags, name string, st *redisstore.Store, _ redis.UniversalClient) error {
		// Hydrogram needs the plain key: say so when it was stored encrypted
		// (and only once the export succeeded).
		var decrypted string
		if how, err := st.AuthKeyStorage(ctx); err == nil && strings.HasPrefix(how, "encrypted") {
			decrypted = how
		}
		ok := false
		defer func() {
			if ok && decrypted != "" {
				fmt.Fprintf(c.errOut, "tgsession export: note: the auth key is stored %s and was decrypted: the export holds it in plaintext; keep it like a password\n", decrypted)
			}
		}()
		if file != "" {
			n, err := c.exportFile(ctx, f, st, file, force)
			if err != nil {
				return err
			}
			ok = true
			if f.json {
				return c.printJSON(map[string]any{"name": name, "file": file, "peers": n})
			}
			fmt.Fprintf(c.out, "wrote %s (mode 0600): session and %d peers\n", file, n)
			return nil
		}
		sess, err := st.Session(ctx)
		if err != nil {
			return err
		}
		var out string
		switch format {
		case "hydrogram", "pyrogram":
			out, err = storage.ExportSessionString(sess)
		case "pyrogram-legacy":
			out, err = sessionstring.EncodePyrogramLegacy(toFields(sess))
		case "telethon":
			fields := toFields(sess)
			addr := dcAddr
			if addr == "" {
				addr = telegramDCs[sess.TestMode.V][sess.DCID.V]
			}
			if fields.Addr, err = netip.ParseAddrPort(addr); err != nil {
				return usageErr("telethon needs the DC address: no default for dc %v (test mode %v); pass --dc-addr ip:port", sess.DCID, sess.TestMode)
			}
			out, err = sessionstring.EncodeTelethon(fields)
		default:
			return usageErr("unknown --format %s: use hydrogram, telethon or pyrogram-legacy", excerpt(format))
		}
		if err != nil {
			return err
		}
		ok = true
		if f.json {
			return c.printJSON(map[string]any{"name": name, "format": format, "session_string": out})
		}
		fmt.Fprintln(c.out, out)
		return nil
	})
}

// exportFile writes the session to a new .session file at the literal path
// file: into a 0600 temporary file beside it, which is then renamed into
// place, so the target is never half-written. Without force an existing
// file is refused, atomically (a hard link that fails if the name exists).
func (c *cli) exportFile(ctx context.Context, f flags, st *redisstore.Store, file string, force bool) (int64, error) {
	if _, err := os.Lstat(file); err == nil && !force {
		return 0, fmt.Errorf("%s exists: pass --force to overwrite it (nothing was changed)", file)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*") // mode 0600
	if err != nil {
		return 0, err
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName)
	dst := filestore.New(tmpName, filestore.Options{Clock: f.clock})
	if err := dst.Open(ctx); err != nil {
		return 0, err
	}
	total, _ := st.PeerCount(ctx)
	n, err := storage.Copy(ctx, dst, st, storage.CopyOptions{BatchSize: 1000, Progress: c.progress(total, "peers")})
	c.progressDone(total)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = dst.Delete(ctx)
		return 0, err
	}
	if force {
		err = os.Rename(tmpName, file)
	} else if err = os.Link(tmpName, file); errors.Is(err, os.ErrExist) {
		err = fmt.Errorf("%s appeared while exporting: pass --force to overwrite it (nothing was changed)", file)
	}
	return n, err
}

func toFields(s storage.Session) sessionstring.Session {
	return sessionstring.Session{DCID: uint8(s.DCID.V), APIID: uint32(s.APIID.V), TestMode: s.TestMode.V,
		AuthKey: s.AuthKey, UserID: uint64(s.UserID.V), IsBot: s.IsBot.V}
}

// info is what ls and show print about a session. It never holds the key.
type info struct {
	Name string `json:"name"`
	// NameBase64 is the name's exact bytes (standard base64) when it is not
	// valid UTF-8: JSON strings cannot carry such bytes, and "name" then has
	// them replaced by U+FFFD, so two names could print alike.
	NameBase64 string `json:"name_base64,omitempty"`
	Missing    bool   `json:"missing,omitempty"`
	Error      string `json:"error,omitempty"` // why the session could not be read (ls goes on)
	DCID       *int   `json:"dc_id"`
	APIID      *int64 `json:"api_id"`
	TestMode   *bool  `json:"test_mode"`
	UserID     *int64 `json:"user_id"`
	IsBot      *bool  `json:"is_bot"`
	Date       int64  `json:"date"`
	AuthKeyID  string `json:"auth_key_id"`
	// AuthKeyStorage is how Redis holds the key: "plaintext",
	// "encrypted (KEY ID)", or "" when there is none.
	AuthKeyStorage string  `json:"auth_key_storage"`
	Peers          int64   `json:"peers"`
	Owner          *string `json:"owner"`
	OwnerPID       int     `json:"owner_pid,omitempty"`
	LeaseLeftS     float64 `json:"lease_left_s,omitempty"`
}

func ptr[T any](n storage.Null[T]) *T {
	if !n.Valid {
		return nil
	}
	return &n.V
}

func describe(ctx context.Context, client redis.UniversalClient, f flags, name string) (info, error) {
	i := info{Name: name}
	if !utf8.ValidString(name) {
		i.NameBase64 = base64.StdEncoding.EncodeToString([]byte(name))
	}
	keys, err := f.keys()
	if err != nil {
		return i, err
	}
	s, err := redisstore.New(client, name, redisstore.Options{Mode: redisstore.Unfenced, Prefix: f.prefix, OpenExisting: true, Keys: keys})
	if err != nil {
		return i, err
	}
	if err := s.Open(ctx); err != nil {
		if errors.Is(err, storage.ErrSessionNotFound) {
			i.Missing = true
			return i, nil
		}
		return i, err
	}
	defer s.Close()
	if i.AuthKeyStorage, err = s.AuthKeyStorage(ctx); err != nil {
		return i, err
	}
	sess, err := s.Session(ctx)
	if err != nil {
		return i, err
	}
	i.DCID, i.APIID, i.TestMode, i.UserID, i.IsBot, i.Date = ptr(sess.DCID), ptr(sess.APIID), ptr(sess.TestMode), ptr(sess.UserID), ptr(sess.IsBot), sess.Date
	i.AuthKeyID = sess.AuthKey.ID()
	if i.Peers, err = s.PeerCount(ctx); err != nil {
		return i, err
	}
	li, err := lock.Inspect(ctx, client, s.LeaseKey())
	if err != nil {
		return i, err
	}
	if li.Held {
		o := li.Owner.WorkerID + "@" + li.Owner.Host
		i.Owner, i.OwnerPID, i.LeaseLeftS = &o, li.Owner.PID, li.TTL.Seconds()
	}
	return i, nil
}

func show[T any](p *T) string {
	if p == nil {
		return "NULL"
	}
	return fmt.Sprint(*p)
}

// connected parses a command's flags (want positional arguments) and
// connects; the caller closes the client.
func (c *cli) connected(args []string, synopsis string, want int) (flags, []string, redis.UniversalClient, error) {
	var f flags
	fs := c.flagSet(&f, synopsis)
	pos, err := parse(fs, args, want)
	if err != nil {
		return f, nil, nil, err
	}
	client, _, err := connect(f.redis, f.tls)
	if err != nil {
		return f, nil, nil, exitError{2, err}
	}
	return f, pos, client, nil
}

func (c *cli) ls(ctx context.Context, args []string) error {
	f, _, client, err := c.connected(args, "", 0)
	if err != nil {
		return err
	}
	defer client.Close()
	if _, err := f.keys(); err != nil {
		return err // a keyring that does not load is the caller's mistake, not every session's
	}
	names, err := redisstore.ListSessions(ctx, client, f.prefix)
	if err != nil {
		return err
	}
	var all []info
	unreadable := 0
	for _, n := range names {
		i, err := describe(ctx, client, f, n)
		if err != nil {
			// One bad session must not hide the others: mark it and go on.
			i = info{Name: n, NameBase64: i.NameBase64, Error: err.Error()}
			unreadable++
		}
		all = append(all, i)
	}
	if unreadable > 0 {
		fmt.Fprintf(c.errOut, "warning: %d session(s) could not be read (see the error column; tgsession show NAME says more)\n", unreadable)
	}
	if f.json {
		if all == nil {
			all = []info{}
		}
		return c.printJSON(all)
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDC\tUSER_ID\tBOT\tPEERS\tOWNER\tLEASE")
	for _, i := range all {
		if i.Missing {
			fmt.Fprintf(tw, "%q\t-\t-\t-\t-\t-\t(registered, no data: lost? tgsession import restores it)\n", i.Name)
			continue
		}
		if i.Error != "" {
			fmt.Fprintf(tw, "%q\t-\t-\t-\t-\t-\t(unreadable: %s)\n", i.Name, i.Error)
			continue
		}
		owner, lease := "-", "-"
		if i.Owner != nil {
			owner, lease = fmt.Sprintf("%s pid %d", *i.Owner, i.OwnerPID), fmt.Sprintf("%.1fs left", i.LeaseLeftS)
		}
		fmt.Fprintf(tw, "%q\t%s\t%s\t%s\t%d\t%s\t%s\n", i.Name, show(i.DCID), show(i.UserID), show(i.IsBot), i.Peers, owner, lease)
	}
	return tw.Flush()
}

func (c *cli) show(ctx context.Context, args []string) error {
	f, pos, client, err := c.connected(args, "NAME", 1)
	if err != nil {
		return err
	}
	defer client.Close()
	i, err := describe(ctx, client, f, pos[0])
	if err != nil {
		return err
	}
	if i.Missing {
		return noSessionError{pos[0], f.prefix}
	}
	if f.json {
		return c.printJSON(i)
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	date := "0"
	if i.Date > 0 {
		date = fmt.Sprintf("%d (%s)", i.Date, time.Unix(i.Date, 0).UTC().Format(time.RFC3339))
	}
	key := "NULL"
	if i.AuthKeyID != "" {
		key = "id " + i.AuthKeyID + " (fingerprint; the key itself is never shown), " + i.AuthKeyStorage
	}
	owner := "nobody"
	if i.Owner != nil {
		owner = fmt.Sprintf("%s pid %d, lease %.1fs left", *i.Owner, i.OwnerPID, i.LeaseLeftS)
	}
	for _, row := range [][2]string{
		{"name", strconv.Quote(i.Name)}, {"dc_id", show(i.DCID)}, {"api_id", show(i.APIID)}, {"test_mode", show(i.TestMode)},
		{"auth_key", key}, {"date", date}, {"user_id", show(i.UserID)}, {"is_bot", show(i.IsBot)},
		{"peers", strconv.FormatInt(i.Peers, 10)}, {"owner", owner},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

func (c *cli) peers(ctx context.Context, args []string) error {
	var id, username, phone string
	return c.withSession(ctx, args, "NAME --id N | --username U | --phone P", func(fs *flag.FlagSet) {
		fs.StringVar(&id, "id", "", "Bot-API style peer id")
		fs.StringVar(&username, "username", "", "username (normalized like storage.NormalizeUsername: case and a leading @ ignored)")
		fs.StringVar(&phone, "phone", "", "phone number")
	}, func(f flags, _ string, st *redisstore.Store, _ redis.UniversalClient) error {
		given := 0
		for _, v := range []string{id, username, phone} {
			if v != "" {
				given++
			}
		}
		if given != 1 {
			return usageErr("give exactly one of --id, --username, --phone")
		}
		var p storage.Peer
		var err error
		switch {
		case id != "":
			n, perr := strconv.ParseInt(id, 10, 64)
			if perr != nil {
				return usageErr("--id %s is not an integer", excerpt(id))
			}
			p, err = st.PeerByID(ctx, n)
		case username != "":
			p, err = st.PeerByUsername(ctx, username)
		default:
			p, err = st.PeerByPhoneNumber(ctx, phone)
		}
		if err != nil {
			return err
		}
		if f.json {
			return c.printJSON(map[string]any{"id": p.ID, "type": p.Type, "access_hash": ptr(p.AccessHash), "usernames": p.Usernames,
				"phone_number": p.PhoneNumber, "min": p.Min, "last_update_on": p.LastUpdateOn, "input_peer": p.InputPeer().String()})
		}
		fmt.Fprintf(c.out, "%v\n  type %s, usernames %v, phone %q, min %v, cached %s\n", p.InputPeer(), p.Type, p.Usernames, p.PhoneNumber, p.Min,
			time.Unix(p.LastUpdateOn, 0).UTC().Format(time.RFC3339))
		return nil
	})
}

func (c *cli) rm(ctx context.Context, args []string) error {
	var yes bool
	return c.withSession(ctx, args, "NAME [--yes]", func(fs *flag.FlagSet) {
		fs.BoolVar(&yes, "yes", false, "do not ask")
	}, func(f flags, name string, st *redisstore.Store, _ redis.UniversalClient) error {
		n, _ := st.PeerCount(ctx)
		if err := c.confirm(yes, fmt.Sprintf("delete session %q and its %d cached peers", name, n)); err != nil {
			return err
		}
		if err := st.Delete(ctx); err != nil {
			if errors.Is(err, lock.ErrHeld) {
				return fmt.Errorf("session %s is owned by a running worker: stop it first, or tgsession unlock NAME (nothing was changed)", excerpt(name))
			}
			return err
		}
		if f.json {
			return c.printJSON(map[string]any{"deleted": name, "peers": n})
		}
		fmt.Fprintf(c.out, "deleted %q (%d peers)\n", name, n)
		return nil
	})
}

func (c *cli) unlock(ctx context.Context, args []string) error {
	var yes, force bool
	return c.withSession(ctx, args, "NAME [--yes] [--force]", func(fs *flag.FlagSet) {
		fs.BoolVar(&yes, "yes", false, "do not ask")
		fs.BoolVar(&force, "force", false, "clear the lease key whatever it holds, even a value that is not a lease")
	}, func(f flags, name string, st *redisstore.Store, client redis.UniversalClient) error {
		li, err := lock.Inspect(ctx, client, st.LeaseKey())
		if err != nil && !force {
			return fmt.Errorf("%w\n(tgsession unlock %s --force clears the key; nothing was changed)", err, name)
		}
		if force {
			if err := c.confirm(yes, fmt.Sprintf("clear the lease key of session %q whatever it holds", name)); err != nil {
				return err
			}
			ok, err := lock.Clear(ctx, client, st.LeaseKey())
			if err != nil {
				return err
			}
			if f.json {
				return c.printJSON(map[string]any{"name": name, "released": ok, "owner": nil})
			}
			fmt.Fprintf(c.out, "cleared the lease key of %q (%v)\n", name, map[bool]string{true: "it held a value", false: "it was empty"}[ok])
			return nil
		}
		if !li.Held {
			if f.json {
				return c.printJSON(map[string]any{"name": name, "released": false, "owner": nil})
			}
			fmt.Fprintf(c.out, "session %q has no owner; nothing to unlock\n", name)
			return nil
		}
		fmt.Fprintf(c.errOut, "session %q is owned by %v, lease %.1fs left\n", name, li.Owner, li.TTL.Seconds())
		if err := c.confirm(yes, fmt.Sprintf("revoke it: the owner is told at once and its writes are refused from now on; "+
			"another worker can take the session when the owner acknowledges, or at the latest in %.1fs (the lease's remaining time, "+
			"which the owner's own deadline never exceeds)", li.TTL.Seconds())); err != nil {
			return err
		}
		start := time.Now()
		delay, ok, err := lock.Revoke(ctx, client, st.LeaseKey(), li)
		if err != nil {
			return err
		}
		if !ok {
			now, _ := lock.Inspect(ctx, client, st.LeaseKey())
			if !now.Held {
				return fmt.Errorf("the lease of %v ended while you were asked; nothing was changed", li.Owner)
			}
			return fmt.Errorf("the lease changed hands while you were asked (now %v): nothing was changed; run tgsession unlock %s again to release it", now.Owner, name)
		}
		// Wait for the owner's acknowledgement or the lock delay, so that
		// "unlocked" means another worker can take the session now.
		acked := false
		for deadline := start.Add(delay + time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			n, err := client.Exists(ctx, st.LeaseKey()).Result()
			if err == nil && n == 0 {
				acked = time.Since(start) < delay
				break
			}
		}
		took := time.Since(start).Round(time.Millisecond)
		how := map[bool]string{true: "the owner acknowledged", false: "its lease ran out"}[acked]
		if f.json {
			return c.printJSON(map[string]any{"name": name, "released": ok, "owner": li.Owner, "delay_ms": delay.Milliseconds(),
				"acknowledged": acked, "took_ms": took.Milliseconds()})
		}
		fmt.Fprintf(c.out, "unlocked %q (was %v; %s after %v)\n", name, li.Owner, how, took)
		return nil
	})
}

// workers lists the live fleet workers under the prefix (package fleet)
// with their capacity and the sessions whose lease they hold now.
func (c *cli) workers(ctx context.Context, args []string) error {
	f, _, client, err := c.connected(args, "", 0)
	if err != nil {
		return err
	}
	defer client.Close()
	members, err := fleet.Members(ctx, client, f.prefix)
	if err != nil {
		return err
	}
	load, err := leaseHolders(ctx, client, f.prefix)
	if err != nil {
		return err
	}
	type row struct {
		Worker   string `json:"worker"`
		Capacity int    `json:"capacity"`
		Sessions int    `json:"sessions"`
	}
	rows := []row{}
	for _, m := range members {
		rows = append(rows, row{m.ID, m.Capacity, load[m.ID]})
	}
	if f.json {
		return c.printJSON(rows)
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tCAPACITY\tSESSIONS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", excerpt(r.Worker), r.Capacity, r.Sessions)
	}
	return tw.Flush()
}

// leaseHolders counts, per worker id, the sessions under prefix whose lease
// it holds.
func leaseHolders(ctx context.Context, client redis.UniversalClient, prefix string) (map[string]int, error) {
	own, err := fleet.Owners(ctx, client, prefix)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, w := range own {
		out[w]++
	}
	return out, nil
}

// registry repairs the session registry: "registry rebuild" registers every
// session whose data exists under the prefix but whose name the registry
// lost (redisstore.RebuildRegistry: a SCAN of the keyspace, every primary).
func (c *cli) registry(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "rebuild" {
		return usageErr("usage: tgsession registry rebuild [flags]: register every session whose data exists but whose name the registry lost")
	}
	f, _, client, err := c.connected(args[1:], "rebuild", 0)
	if err != nil {
		return err
	}
	defer client.Close()
	added, err := redisstore.RebuildRegistry(ctx, client, f.prefix)
	if err != nil {
		return err
	}
	if f.json {
		if added == nil {
			added = []string{}
		}
		return c.printJSON(map[string]any{"registered": added})
	}
	for _, n := range added {
		fmt.Fprintf(c.out, "registered %s\n", excerpt(n))
	}
	fmt.Fprintf(c.out, "%d session(s) registered again under prefix %s\n", len(added), excerpt(f.prefix))
	return nil
}
