package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartStop(t *testing.T) {
	if _, err := Binary(); err != nil {
		if InCI() {
			t.Fatalf("redis-server required in CI: %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q; want a loopback address", s.Addr)
	}
	if err := ping(s.Addr); err != nil {
		t.Fatalf("PING: %v", err)
	}
	s.Stop()
	s.Stop() // twice is fine
	if c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Errorf("server still listening on %s after Stop", s.Addr)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left behind", s.Dir)
	}
}

func TestStartMissingBinary(t *testing.T) {
	t.Setenv("REDIS_SERVER", "/nonexistent/redis-server")
	if s, err := Start(); err == nil {
		s.Stop()
		t.Fatal("Start with a missing binary succeeded")
	}
}

func TestTopologies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 11 servers")
	}
	ctx := context.Background()
	s := NewSentinel(t)
	sc := s.Client()
	defer sc.Close()
	if err := sc.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("write through Sentinel: %v", err)
	}
	if addr, err := s.PrimaryAddr(ctx); err != nil || addr != s.Primary.Addr {
		t.Errorf("PrimaryAddr = %q, %v; want %s", addr, err, s.Primary.Addr)
	}
	c := NewCluster(t, 3, 1)
	cc := c.Client()
	defer cc.Close()
	for i := 0; i < 50; i++ {
		if err := cc.Set(ctx, fmt.Sprintf("key%d", i), i, 0).Err(); err != nil {
			t.Fatalf("write through Cluster: %v", err)
		}
	}
	p, r, err := c.PrimaryFor(ctx, "key1")
	if err != nil || p == nil || r == nil || p == r {
		t.Errorf("PrimaryFor = %v, %v, %v", p, r, err)
	}
	// A real cluster refuses a script whose keys live in two slots.
	err = cc.Eval(ctx, "return 1", []string{"{a}x", "{b}y"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("cross-slot EVAL = %v; want CROSSSLOT", err)
	}
}

// TestProxy: traffic flows; Stall holds a reply until Heal (delivered, in
// order); Cut resets open connections and new ones work.
func TestProxy(t *testing.T) {
	t.Parallel()
	srv := Require(t)
	p := NewProxy(t, srv.Addr)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func(cmd string, wait time.Duration) (string, error) {
		if _, err := c.Write([]byte(cmd)); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		return string(buf[:n]), err
	}
	if got, err := roundTrip("PING\r\n", 5*time.Second); err != nil || got != "+PONG\r\n" {
		t.Fatalf("PING through the proxy = %q, %v", got, err)
	}
	p.Stall()
	if got, err := roundTrip("ECHO a\r\nECHO b\r\n", 300*time.Millisecond); err == nil {
		t.Fatalf("a stalled proxy delivered %q", got)
	}
	p.Heal()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 64)
	for len(got) < len("$1\r\na\r\n$1\r\nb\r\n") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after Heal: %v (got %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "$1\r\na\r\n$1\r\nb\r\n" {
		t.Errorf("after Heal got %q; want both replies in order", got)
	}
	p.Cut()
	if _, err := roundTrip("PING\r\n", 5*time.Second); err == nil {
		t.Error("a cut connection still answered")
	}
	c2, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c = c2
	if got, err := roundTrip("PING\r\n", 5*time.Second); err != nil || got != "+PONG\r\n" {
		t.Errorf("PING on a new connection after Cut = %q, %v", got, err)
	}
}

func TestMain(m *testing.M) { Main(m) }
