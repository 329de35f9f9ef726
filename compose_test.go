package redisstore

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/tgsession/redisstore/internal/redistest"
)

// TestComposeFile validates docker-compose.yml with Debian's docker-compose
// (no Docker engine needed for "config"): the default service runs Redis with
// AOF every second; the sentinel profile adds a replica and three Sentinels;
// every port is published on 127.0.0.1 only, and nothing starts without a
// password from the environment (.env), which never appears on a command line.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		if redistest.InCI() {
			t.Fatalf("docker-compose is needed in CI to validate docker-compose.yml (apt-get install docker-compose): %v", err)
		}
		t.Skipf("docker-compose not installed: %v", err)
	}
	compose := func(password string, args ...string) ([]byte, error) {
		cmd := exec.Command(bin, append([]string{"-f", "docker-compose.yml", "--project-directory", t.TempDir()}, args...)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "REDIS_PASSWORD=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		if password != "" {
			cmd.Env = append(cmd.Env, "REDIS_PASSWORD="+password)
		}
		return cmd.CombinedOutput()
	}
	if out, err := compose("", "config"); err == nil || !strings.Contains(string(out), "REDIS_PASSWORD") {
		t.Errorf("docker-compose config without REDIS_PASSWORD: err %v, output %q; want a refusal naming REDIS_PASSWORD", err, out)
	}
	const pw = "compose-test-password"
	out, err := compose(pw, "--profile", "sentinel", "config")
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	cfg := string(out)
	for _, want := range []string{"--appendonly", "--appendfsync", "everysec", "--replicaof", "sentinel monitor mymaster redis 6379 2",
		"sentinel auth-pass mymaster", "requirepass", "redis-replica:", "sentinel-1:", "sentinel-2:", "sentinel-3:", "26379"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("docker-compose config lacks %q", want)
		}
	}
	ports := regexp.MustCompile(`(?m)^\s*- (\S+:\d+/tcp)$`).FindAllStringSubmatch(cfg, -1)
	if len(ports) != 5 {
		t.Errorf("published ports: %v; want 5", ports)
	}
	for _, p := range ports {
		if !strings.HasPrefix(p[1], "127.0.0.1:") {
			t.Errorf("port %s is published beyond 127.0.0.1", p[1])
		}
	}
	// The password is in the environment only, never in a command line.
	for _, line := range strings.Split(cfg, "\n") {
		if strings.Contains(line, pw) && !regexp.MustCompile(`^\s*(REDIS_PASSWORD|REDISCLI_AUTH): `).MatchString(line) {
			t.Errorf("the password appears outside the environment: %q", line)
		}
	}
	services, err := compose(pw, "config", "--services")
	if err != nil || !strings.Contains(string(services), "redis\n") {
		t.Errorf("services: %q, %v", services, err)
	}
}
