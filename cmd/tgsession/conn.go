package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// connectHelp documents the --redis forms.
const connectHelp = `--redis URL (default $REDIS_URL):
  redis://[user:password@]host:6379[/db]          one server (rediss:// for TLS)
  redis-sentinel://[user:password@]s1:26379[/db]?addr=s2:26379&addr=s3:26379&master_name=mymaster
                                                  Sentinel (rediss-sentinel:// for TLS)
  redis-cluster://[user:password@]n1:6379?addr=n2:6379&addr=n3:6379
                                                  Cluster (rediss-cluster:// for TLS)
  Query parameters are go-redis options in snake_case (dial_timeout=2s, ...).
  TLS (rediss schemes): --tls-ca FILE trusts that CA (PEM) instead of the system's;
  --tls-cert FILE and --tls-key FILE present a client certificate (PEM), which a
  server with tls-auth-clients yes (Redis's default) requires.`

// tlsFiles are the --tls-* flags.
type tlsFiles struct {
	ca, cert, key string
}

func (t tlsFiles) given() bool { return t.ca != "" || t.cert != "" || t.key != "" }

// config builds the TLS configuration for serverName from the files, on top
// of base (what the URL asked for, such as skip_verify), or returns base.
func (t tlsFiles) config(base *tls.Config, serverName string) (*tls.Config, error) {
	if !t.given() {
		return base, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if base != nil {
		cfg = base.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = serverName
		}
	}
	if t.ca != "" {
		pem, err := os.ReadFile(t.ca)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", t.ca)
		}
		cfg.RootCAs = pool
	}
	if (t.cert == "") != (t.key == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if t.cert != "" {
		pair, err := tls.LoadX509KeyPair(t.cert, t.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err) // names the files, never prints the key
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// connect builds a go-redis client from a URL in one of the documented forms
// and the --tls-* files. No error it returns contains the URL's password.
func connect(rawURL string, t tlsFiles) (redis.UniversalClient, string, error) {
	if rawURL == "" {
		rawURL = os.Getenv("REDIS_URL")
	}
	if rawURL == "" {
		return nil, "", fmt.Errorf("no Redis given: pass --redis URL or set REDIS_URL\n%s", connectHelp)
	}
	client, where, err := buildClient(rawURL, t)
	if err != nil {
		msg := scrub(err.Error(), rawURL)
		if leaksUserinfo(msg, rawURL) {
			// A parser quoted a piece of the password (a '#', '/' or '?' in it
			// ends the URL's authority early): say what to do instead.
			msg = fmt.Sprintf("--redis %s does not parse as a URL: percent-encode '#', '/', '?', '@' and '%%' in the user name and password (%%23 %%2F %%3F %%40 %%25)\n%s",
				excerpt(redact(rawURL)), connectHelp)
		}
		return nil, "", errors.New(msg)
	}
	return client, where, nil
}

// userinfoOf returns what stands between "://" and the last '@' of a URL
// (a password may hold '@', '/', '#', '?': the last '@' ends it).
func userinfoOf(rawURL string) (string, bool) {
	_, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return "", false
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return "", false
	}
	return rest[:at], true
}

// leaksUserinfo reports whether msg holds any 3-character piece of the URL's
// user information (raw, or percent-decoded), or all of a shorter one.
func leaksUserinfo(msg, rawURL string) bool {
	userinfo, ok := userinfoOf(rawURL)
	if !ok {
		return false
	}
	forms := []string{userinfo}
	if dec, err := url.PathUnescape(userinfo); err == nil {
		forms = append(forms, dec)
	}
	for _, f := range forms {
		f = strings.TrimPrefix(f, ":")
		if len(f) < 3 {
			if f != "" && strings.Contains(msg, f) {
				return true
			}
			continue
		}
		for i := 0; i+3 <= len(f); i++ {
			if strings.Contains(msg, f[i:i+3]) {
				return true
			}
		}
	}
	return false
}

func buildClient(rawURL string, t tlsFiles) (redis.UniversalClient, string, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, "", fmt.Errorf("--redis %s is not a URL\n%s", excerpt(redact(rawURL)), connectHelp)
	}
	if t.given() && !strings.HasPrefix(scheme, "rediss") {
		return nil, "", fmt.Errorf("--tls-* flags need a TLS URL (rediss://, rediss-sentinel://, rediss-cluster://), not %s://", scheme)
	}
	switch scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, "", fmt.Errorf("--redis: %w\n%s", err, connectHelp)
		}
		host, _, _ := strings.Cut(o.Addr, ":")
		if o.TLSConfig, err = t.config(o.TLSConfig, host); err != nil {
			return nil, "", err
		}
		return redis.NewClient(o), "redis " + o.Addr, nil
	case "redis-sentinel", "rediss-sentinel":
		o, err := redis.ParseFailoverURL(strings.TrimSuffix(scheme, "-sentinel") + "://" + rest)
		if err != nil {
			return nil, "", fmt.Errorf("--redis: %w\n%s", err, connectHelp)
		}
		if o.MasterName == "" {
			return nil, "", fmt.Errorf("--redis: a Sentinel URL needs master_name=<name>\n%s", connectHelp)
		}
		if o.TLSConfig, err = t.config(o.TLSConfig, ""); err != nil {
			return nil, "", err
		}
		return redis.NewFailoverClient(o), fmt.Sprintf("sentinel %v master %s", o.SentinelAddrs, o.MasterName), nil
	case "redis-cluster", "rediss-cluster":
		o, err := redis.ParseClusterURL(strings.TrimSuffix(scheme, "-cluster") + "://" + rest)
		if err != nil {
			return nil, "", fmt.Errorf("--redis: %w\n%s", err, connectHelp)
		}
		if o.ClusterStateReloadInterval == 0 {
			o.ClusterStateReloadInterval = time.Second // keeps a failover's gap near the promotion time
		}
		if o.TLSConfig, err = t.config(o.TLSConfig, ""); err != nil {
			return nil, "", err
		}
		return redis.NewClusterClient(o), fmt.Sprintf("cluster %v", o.Addrs), nil
	}
	return nil, "", fmt.Errorf("--redis: unknown scheme %s\n%s", excerpt(scheme), connectHelp)
}

// redact hides the user information of a URL for messages.
func redact(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return rawURL
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "://***@" + rest[at+1:]
	}
	return rawURL
}

// scrub removes every form of the URL's password (and the user information
// around it) from msg: parse errors quote the URL they failed on.
func scrub(msg, rawURL string) string {
	userinfo, ok := userinfoOf(rawURL)
	if !ok {
		return msg
	}
	msg = strings.ReplaceAll(msg, userinfo+"@", "***@")
	if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
		forms := []string{pw}
		if dec, err := url.PathUnescape(pw); err == nil {
			forms = append(forms, dec)
		}
		for _, f := range forms {
			if len(f) >= 3 { // a one-letter password would blank the whole message
				msg = strings.ReplaceAll(msg, f, "***")
			}
		}
	}
	return msg
}
