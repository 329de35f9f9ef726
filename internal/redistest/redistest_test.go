package redistest

import (
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
