// Package tlsconfig builds the TLS configurations of cdc's connections (Kafka
// brokers, the schema registry, MySQL/MariaDB) from the same settings: the
// files of a CA and a client certificate, the name to verify, and how much to
// verify.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Verification says what of a server's certificate is checked.
type Verification string

const (
	// VerifyFull checks the chain and that the certificate names the server
	// (the default).
	VerifyFull Verification = "verify-full"
	// VerifyCA checks the chain only: a certificate of the CA for any name
	// is accepted.
	VerifyCA Verification = "verify-ca"
	// Required encrypts without checking anything: anyone on the path can
	// read and change the traffic. Only with a warning at every start.
	Required Verification = "required"
)

// Settings are what a configuration says of one TLS connection.
type Settings struct {
	// CAFile holds the PEM certificates of the CAs to trust; empty: the
	// system's.
	CAFile string
	// CertFile and KeyFile hold the client's certificate and key (mutual TLS).
	CertFile, KeyFile string
	// ServerName is the name the server's certificate must carry; empty: the
	// host connected to.
	ServerName string
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string
	Verify     Verification
}

// maxFileSize bounds a certificate or key file: a path that names something
// else (a device, a huge file) fails instead of filling memory.
const maxFileSize = 1 << 20

// Build returns the TLS configuration of the settings. Its errors name the
// file and what is wrong with it, never its content.
func Build(s Settings) (*tls.Config, error) {
	c := &tls.Config{ServerName: s.ServerName, MinVersion: tls.VersionTLS12}
	switch s.MinVersion {
	case "", "1.2":
	case "1.3":
		c.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("min_version %q: want 1.2 or 1.3", s.MinVersion)
	}
	if s.CAFile != "" {
		pem, err := readFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", s.CAFile)
		}
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together: the client certificate and its key")
	}
	if s.CertFile != "" {
		certPEM, err := readFile(s.CertFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		keyPEM, err := readFile(s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("cert_file %s and key_file %s are not a PEM certificate and its key", s.CertFile, s.KeyFile)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	switch s.Verify {
	case "", VerifyFull:
	case VerifyCA:
		// Go verifies the chain and the name together: skip both, then check
		// the chain alone.
		roots := c.RootCAs
		c.InsecureSkipVerify = true
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, len(raw))
			for i, der := range raw {
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					return err
				}
				certs[i] = cert
			}
			if len(certs) == 0 {
				return errors.New("the server sent no certificate")
			}
			intermediates := x509.NewCertPool()
			for _, cert := range certs[1:] {
				intermediates.AddCert(cert)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates})
			return err
		}
	case Required:
		c.InsecureSkipVerify = true
	default:
		return nil, fmt.Errorf("mode %q: want verify-full, verify-ca or required", s.Verify)
	}
	return c, nil
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() || info.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is not a regular file of at most %d bytes", path, maxFileSize)
	}
	return os.ReadFile(path)
}
