// Package redistest starts real redis-server processes on free 127.0.0.1
// ports for tests, and stops every process it started. It never connects to
// a server it did not start.
//
// When redis-server is missing, Require skips the test with a message
// outside CI and fails it when CI=true, so CI can never pass by skipping.
package redistest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process started by this package.
type Server struct {
	Addr string // 127.0.0.1:port
	Port int
	Dir  string

	busPort int // cluster bus port, for cluster nodes
	bin     string
	argv    []string
	pmu     sync.Mutex // guards cmd and done, which Restart replaces
	cmd     *exec.Cmd
	done    chan struct{}
	log     bytes.Buffer
	mu      sync.Mutex
}

// proc returns the current process and its done channel.
func (s *Server) proc() (*exec.Cmd, chan struct{}) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.cmd, s.done
}

// Binary returns the redis-server path ($REDIS_SERVER or from PATH).
func Binary() (string, error) {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p, nil
	}
	return exec.LookPath("redis-server")
}

// InCI reports whether CI=true, where missing servers fail tests.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Start starts a redis-server on a free loopback port with no persistence.
// extra are additional config arguments ("--name", "value", ...).
func Start(extra ...string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, fmt.Errorf("redistest: redis-server not found (install the Debian package redis-server, or set REDIS_SERVER): %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := start(bin, port, func(dir string) ([]string, error) {
			args := []string{
				"--port", strconv.Itoa(port),
				"--bind", "127.0.0.1",
				"--save", "",
				"--appendonly", "no",
				"--dir", dir,
				"--daemonize", "no",
				"--logfile", "",
			}
			return append(args, extra...), nil
		})
		if err == nil {
			return s, nil
		}
		lastErr = err // most likely the port was taken in between; try another
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: no free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs bin with the arguments args returns for the server's fresh
// directory, and waits until it answers PING on port.
func start(bin string, port int, args func(dir string) ([]string, error)) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-"+strconv.Itoa(port)+"-")
	if err != nil {
		return nil, err
	}
	argv, err := args(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir, bin: bin, argv: argv}
	if err := s.run(argv); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Restart starts a killed server again on its port and directory (a
// cluster node keeps its nodes.conf), with extra arguments after the
// original ones (a later option wins: "--replicaof", host, port makes a
// killed primary come back as a replica).
func (s *Server) Restart(extra ...string) error {
	if s.Alive() {
		return fmt.Errorf("redistest: restart %s: still running", s.Addr)
	}
	return s.run(append(slices.Clone(s.argv), extra...))
}

// run starts the process with argv and waits until it answers PING.
func (s *Server) run(argv []string) error {
	bin := s.bin
	cmd, done := exec.Command(bin, argv...), make(chan struct{})
	s.pmu.Lock()
	s.cmd, s.done = cmd, done
	s.pmu.Unlock()
	cmd.Stdout = &lockedWriter{s: s}
	cmd.Stderr = &lockedWriter{s: s}
	// The server dies with the test binary even if the binary is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		close(done)
		return fmt.Errorf("redistest: start %s: %w", bin, err)
	}
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Kill()
		return err
	}
	return nil
}

type lockedWriter struct{ s *Server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.log.Len() < logLimit {
		w.s.log.Write(p)
	}
	return len(p), nil
}

// logLimit is how much of a server's output Log keeps: enough for a long
// failover test's role changes (Sentinels log every event).
const logLimit = 4 << 20

// Log returns what the server printed (its first 4 MiB).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

func (s *Server) waitReady(timeout time.Duration) error {
	_, done := s.proc()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redistest: redis-server on port %d exited: %s", s.Port, s.Log())
		default:
		}
		if err := ping(s.Addr); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redistest: redis-server on port %d not ready after %v: %s", s.Port, timeout, s.Log())
}

// ping sends an inline PING and expects +PONG, without any client library.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return errors.New("unexpected reply " + strconv.Quote(line))
	}
	return nil
}

// Stop kills the server and removes its directory. It is safe to call twice.
func (s *Server) Stop() {
	cmd, done := s.proc()
	if cmd != nil && cmd.Process != nil {
		select {
		case <-done:
		default:
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
	}
	os.RemoveAll(s.Dir)
}

// Kill stops the server at once with SIGKILL (a crash).
func (s *Server) Kill() {
	cmd, done := s.proc()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		<-done
	}
}

// Pause freezes the server (SIGSTOP), as a stalled VM would be.
func (s *Server) Pause() {
	cmd, _ := s.proc()
	_ = cmd.Process.Signal(syscall.SIGSTOP)
}

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() {
	cmd, _ := s.proc()
	_ = cmd.Process.Signal(syscall.SIGCONT)
}

// Alive reports whether the process is still running.
func (s *Server) Alive() bool {
	_, done := s.proc()
	select {
	case <-done:
		return false
	default:
		return true
	}
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
)

// Require returns the package-wide shared server, starting it on first use.
// Tests sharing it must use their own keys. Outside CI a missing redis-server
// skips the test; with CI=true it fails the test. Call Cleanup from TestMain.
func Require(t testing.TB) *Server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start()
	}
	requireOrSkip(t, "server", sharedErr)
	return shared
}

// Own starts a server for this test alone (for a FLUSHALL, a restart, a
// server-wide setting), stopped when the test ends. Like Require, it skips
// outside CI and fails in CI when redis-server cannot run.
func Own(t testing.TB, extra ...string) *Server {
	t.Helper()
	srv, err := Start(extra...)
	requireOrSkip(t, "server", err)
	t.Cleanup(srv.Stop)
	return srv
}

// Cleanup stops the shared server and topologies, if any were started.
func Cleanup() {
	sharedMu.Lock()
	if shared != nil {
		shared.Stop()
		shared = nil
	}
	sharedMu.Unlock()
	cleanupTopologies()
}

// Main runs the tests and stops the shared server afterwards:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
func Main(m *testing.M) {
	redis.SetLogger(quiet{}) // go-redis logs every Sentinel switch and retry to stderr
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Context returns a context for one test step with a generous timeout.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TempName returns a name unique within this process for keys or sessions.
func TempName(t testing.TB) string {
	n := counter.Add(1)
	return fmt.Sprintf("%s#%d-%d", filepath.Base(t.Name()), os.Getpid(), n)
}

var counter atomic.Int64

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// NewACLUser creates a user with password "pw" and the given ACL rules (e.g.
// "+@all", "-msetnx") on srv, for one test, and deletes it at the end. It
// returns the user name.
func NewACLUser(t testing.TB, srv *Server, rules ...string) string {
	t.Helper()
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	user := fmt.Sprintf("u%d-%d", os.Getpid(), counter.Add(1))
	args := []any{"ACL", "SETUSER", user, "on", ">pw", "~*", "&*"}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := admin.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("redistest: ACL SETUSER: %v", err)
	}
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer c.Close()
		_ = c.Do(context.Background(), "ACL", "DELUSER", user).Err()
	})
	return user
}

// READMEACL reads the ACL SETUSER line that follows the marker
// "<!-- acl:ROLE -->" in the README at path, creates that user on srv with
// password "pw" (the line's ">CHANGE-ME" replaced), deletes it at the end,
// and returns the user name: tests run as exactly the documented ACL.
func READMEACL(t testing.TB, srv *Server, path, role string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- acl:" + role + " -->"
	_, after, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("redistest: %s has no %s", path, marker)
	}
	var line string
	for _, l := range strings.Split(after, "\n") {
		if strings.HasPrefix(l, "ACL SETUSER ") {
			line = l
			break
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 4 || !slices.Contains(fields, ">CHANGE-ME") {
		t.Fatalf("redistest: the %s ACL line in %s is not ACL SETUSER <user> ... >CHANGE-ME ...: %q", role, path, line)
	}
	args := make([]any, 0, len(fields))
	for _, f := range fields {
		if f == ">CHANGE-ME" {
			f = ">pw"
		}
		args = append(args, f)
	}
	user := fields[2]
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("redistest: %s: %v", line, err)
	}
	t.Cleanup(func() {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer c.Close()
		_ = c.Do(context.Background(), "ACL", "DELUSER", user).Err()
	})
	return user
}
