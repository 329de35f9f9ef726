package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// TLSFiles are PEM files for a TLS test: a CA, a server certificate for
// 127.0.0.1 signed by it, and a client certificate signed by it. Keys are
// written 0600.
type TLSFiles struct {
	Dir                   string
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	OtherCA               string // a second CA that signed nothing here (for "unknown authority" checks)
}

// NewTLSFiles generates a CA and certificates with crypto/x509 into dir.
func NewTLSFiles(dir string) (TLSFiles, error) {
	f := TLSFiles{Dir: dir}
	caKey, caCert, caDER, err := newCA("tgsession test CA")
	if err != nil {
		return f, err
	}
	_, _, otherDER, err := newCA("another CA")
	if err != nil {
		return f, err
	}
	f.CA, f.OtherCA = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other-ca.pem")
	if err := writePEM(f.CA, "CERTIFICATE", caDER); err != nil {
		return f, err
	}
	if err := writePEM(f.OtherCA, "CERTIFICATE", otherDER); err != nil {
		return f, err
	}
	for _, leaf := range []struct {
		name      string
		usage     x509.ExtKeyUsage
		cert, key *string
	}{
		{"server", x509.ExtKeyUsageServerAuth, &f.ServerCert, &f.ServerKey},
		{"client", x509.ExtKeyUsageClientAuth, &f.ClientCert, &f.ClientKey},
	} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return f, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: "tgsession test " + leaf.name},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{leaf.usage},
			IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return f, err
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return f, err
		}
		*leaf.cert, *leaf.key = filepath.Join(dir, leaf.name+".pem"), filepath.Join(dir, leaf.name+"-key.pem")
		if err := writePEM(*leaf.cert, "CERTIFICATE", der); err != nil {
			return f, err
		}
		if err := writePEM(*leaf.key, "PRIVATE KEY", keyDER); err != nil {
			return f, err
		}
	}
	return f, nil
}

func newCA(name string) (*ecdsa.PrivateKey, *x509.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, der, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// TLSServer is a redis-server that also listens for TLS on TLSAddr and
// requires a client certificate there (tls-auth-clients yes, Redis's
// default); Addr stays plain for the harness's own checks.
type TLSServer struct {
	*Server
	TLSAddr string
	Files   TLSFiles
}

// StartTLS generates certificates into dir and starts a TLS server.
func StartTLS(dir string) (*TLSServer, error) {
	files, err := NewTLSFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("redistest: generate certificates: %w", err)
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		srv, err := Start("--tls-port", strconv.Itoa(port), "--tls-cert-file", files.ServerCert, "--tls-key-file", files.ServerKey,
			"--tls-ca-cert-file", files.CA, "--tls-auth-clients", "yes")
		if err == nil {
			return &TLSServer{Server: srv, TLSAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Files: files}, nil
		}
		lastErr = err
	}
	return nil, lastErr
}
