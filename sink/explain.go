package sink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// explain says, of a failure to talk to the brokers, what failed and what to
// do: no broker reachable, the TLS handshake (which certificate, which name),
// the authentication (which mechanism), or an ACL the principal lacks. The
// cause stays wrapped.
func (k *Kafka) explain(err error) error {
	if err == nil {
		return nil
	}
	mechanism := ""
	if k.cfg.SASL != nil {
		mechanism = k.cfg.SASL.Name()
	}
	return explain(err, "kafka.brokers", "kafka.tls", k.cfg.TLS != nil, mechanism)
}

// explain is explain for a connection to the servers at addressKey, whose
// TLS settings are at tlsKey.
func explain(err error, addressKey, tlsKey string, withTLS bool, mechanism string) error {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		opErr     *net.OpError
	)
	text := err.Error()
	var why string
	switch {
	case errors.As(err, &unknownCA):
		why = "TLS handshake: the server's certificate is signed by an authority cdc does not trust: set " + tlsKey + ".ca_file to the certificate of the CA that signed it"
		if unknownCA.Cert != nil {
			why += fmt.Sprintf(" (the certificate's issuer: %s)", unknownCA.Cert.Issuer)
		}
	case errors.As(err, &hostname):
		why = fmt.Sprintf("TLS handshake: the server's certificate is not valid for the name %s (it names %s): connect by a name it carries, or set %s.server_name",
			hostname.Host, certificateNames(hostname.Certificate), tlsKey)
	case errors.As(err, &invalid):
		why = "TLS handshake: the server's certificate is not valid (" + invalid.Error() + ")"
	case errors.As(err, &record):
		why = "TLS handshake: the server did not answer in TLS: is " + tlsKey + " on for a plaintext listener?"
	case strings.Contains(text, "remote error: tls: "):
		why = "TLS handshake: the server refused cdc's client certificate (" + text[strings.Index(text, "remote error: tls: ")+len("remote error: "):] + "): set " + tlsKey + ".cert_file and key_file to a certificate its CA signed"
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		why = fmt.Sprintf("authentication refused (SASL %s): check kafka.sasl's username and password, or token", mechanism)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		why = fmt.Sprintf("the brokers do not offer the SASL mechanism %s: set kafka.sasl.mechanism to one their listener enables", mechanism)
	case errors.Is(err, kerr.IllegalSaslState):
		why = "the brokers expect a SASL authentication: set kafka.sasl"
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed), errors.Is(err, kerr.GroupAuthorizationFailed):
		why = "authenticated, but the principal lacks an ACL for this operation (the README lists the ACLs cdc needs in each delivery mode)"
	case mechanism != "" && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		// Kafka answers a refused authentication with an error code; some
		// servers (and proxies) close the connection instead.
		why = fmt.Sprintf("the broker closed the connection while cdc authenticated (SASL %s): most often a wrong username or password (check kafka.sasl's username and password, or token), else a listener that expects another mechanism", mechanism)
	case !withTLS && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		why = "the broker closed the connection at once: a TLS or SASL listener reached without kafka.tls or kafka.sasl?"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		why = "nothing answers at that address: check " + addressKey + " and that the servers are up"
	default:
		return err
	}
	return fmt.Errorf("%s: %w", why, err)
}

func certificateNames(c *x509.Certificate) string {
	if c == nil {
		return "no name"
	}
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return c.Subject.CommonName
	}
	return strings.Join(names, ", ")
}

// isAnswer reports whether a failure is the server's answer (a TLS handshake
// or an authentication refused), which trying again cannot change, rather
// than a failure of the network path.
func isAnswer(err error) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &record) ||
		strings.Contains(err.Error(), "remote error: tls: ") ||
		errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.IllegalSaslState)
}
