package sink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Registry says how to reach the schema registry.
type Registry struct {
	// URL is the registry's base URL; empty: no registry. Credentials in it
	// (https://user:pass@host) are taken out and used for basic auth: they
	// never appear in a message.
	URL string
	// TLS configures https (the system's roots when nil).
	TLS *tls.Config
	// Username and Password authenticate with basic auth; Token, instead,
	// as a bearer token.
	Username, Password, Token string
}

// registryTimeout bounds each request to the registry.
const registryTimeout = 30 * time.Second

// Display is the registry's URL as messages show it: without credentials.
func (r Registry) Display() string { return displayURL(r.URL) }

// displayURL drops the user information of a URL, and anything unparseable.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparseable URL)"
	}
	u.User = nil
	return u.String()
}

// registry is a client of the configured schema registry.
func (k *Kafka) registry() (*sr.Client, error) {
	return k.cfg.Registry.client()
}

func (r Registry) client() (*sr.Client, error) {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("schema registry %s: want an http:// or https:// URL", r.Display())
	}
	opts := []sr.ClientOpt{}
	user, pass := r.Username, r.Password
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	opts = append(opts, sr.URLs(u.String()))
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if r.TLS != nil {
		transport.TLSClientConfig = r.TLS.Clone()
	}
	opts = append(opts, sr.HTTPClient(&http.Client{Timeout: registryTimeout, Transport: transport}))
	switch {
	case r.Token != "":
		opts = append(opts, sr.BearerToken(r.Token))
	case user != "":
		opts = append(opts, sr.BasicAuth(user, pass))
	}
	client, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: %w", r.Display(), err)
	}
	return client, nil
}

// SchemaByID reads a schema the registry knows by its id (the records'
// Confluent header names it).
func (k *Kafka) SchemaByID(ctx context.Context, id int) (avro.Schema, error) {
	client, err := k.registry()
	if err != nil {
		return nil, err
	}
	s, err := client.SchemaByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("schema registry %s: schema id %d: %w", k.cfg.Registry.Display(), id, registryError(err))
	}
	return avro.Parse(s.Schema)
}

// Registry error codes of the Confluent REST API.
const (
	errSubjectNotFound = 40401
	errVersionNotFound = 40402
	errSchemaNotFound  = 40403
)

func isNotFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && (re.ErrorCode == errSubjectNotFound || re.ErrorCode == errSchemaNotFound || re.ErrorCode == errVersionNotFound ||
		(re.ErrorCode == 0 && re.StatusCode == http.StatusNotFound))
}

// registryError says what an authentication or authorization refusal means.
func registryError(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("authentication refused (HTTP 401): check kafka.schema_registry's username and password, or token: %w", err)
		case http.StatusForbidden:
			return fmt.Errorf("the registry refused the request (HTTP 403): wrong credentials, or a principal without read and write on the subject; check kafka.schema_registry's username and password, or token, and the principal's permissions: %w", err)
		}
	}
	return explain(err, "kafka.schema_registry", "kafka.schema_registry.tls", true, "")
}
