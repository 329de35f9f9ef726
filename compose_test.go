package redisstore

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tgsession/redisstore/internal/redistest"
)

// TestComposeFile validates docker-compose.yml with Debian's docker-compose
// (no Docker engine needed for "config"): the default service runs Redis with
// AOF every second; the sentinel profile adds a replica and three Sentinels.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		if redistest.InCI() {
			t.Fatalf("docker-compose is needed in CI to validate docker-compose.yml (apt-get install docker-compose): %v", err)
		}
		t.Skipf("docker-compose not installed: %v", err)
	}
	out, err := exec.Command(bin, "-f", "docker-compose.yml", "--profile", "sentinel", "config").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	cfg := string(out)
	for _, want := range []string{"--appendonly", "--appendfsync", "everysec", "--replicaof", "sentinel monitor mymaster redis 6379 2",
		"redis-replica:", "sentinel-1:", "sentinel-2:", "sentinel-3:", "26379"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("docker-compose config lacks %q", want)
		}
	}
	services, err := exec.Command(bin, "-f", "docker-compose.yml", "config", "--services").Output()
	if err != nil || !strings.Contains(string(services), "redis\n") {
		t.Errorf("services: %q, %v", services, err)
	}
}
