package harness

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Registry is a TEST DOUBLE of a Confluent schema registry: no Java registry can
// be installed here. franz-go's srfake serves the real REST API in process
// (subjects, versions, ids, compatibility levels); what srfake leaves out, a real
// registry's refusal (409) of a schema incompatible with its subject under the
// subject's level, is added here with hamba/avro's compatibility checker. cdc
// talks to it with the same client and requests as to a real registry.
type Registry struct {
	*srfake.Registry
}

// NewRegistry starts a registry on a local port; Close stops it.
func NewRegistry() *Registry {
	r := &Registry{Registry: srfake.New()}
	r.Intercept(r.refuseIncompatible)
	return r
}

var registerPath = regexp.MustCompile(`^/subjects/([^/]+)/versions$`)

func (r *Registry) refuseIncompatible(w http.ResponseWriter, req *http.Request) bool {
	m := registerPath.FindStringSubmatch(req.URL.Path)
	if req.Method != http.MethodPost || m == nil {
		return false
	}
	subject := m[1]
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body)) // srfake reads it next
	var payload struct {
		Schema string `json:"schema"`
	}
	if json.Unmarshal(body, &payload) != nil {
		return false
	}
	schema, err := avro.Parse(payload.Schema)
	if err != nil {
		return false
	}
	if reason := r.incompatibility(subject, schema); reason != "" {
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		w.WriteHeader(http.StatusConflict)
		msg, _ := json.Marshal(map[string]any{"error_code": 409,
			"message": fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q: %s", subject, reason)})
		_, _ = w.Write(msg)
		return true
	}
	return false
}

// incompatibility checks schema against the subject's versions as its level says.
func (r *Registry) incompatibility(subject string, schema avro.Schema) string {
	var config struct {
		Level string `json:"compatibilityLevel"`
	}
	if r.get("/config/"+subject, &config) != http.StatusOK || config.Level == "NONE" || config.Level == "" {
		return ""
	}
	var versions []int
	if r.get("/subjects/"+subject+"/versions", &versions) != http.StatusOK || len(versions) == 0 {
		return ""
	}
	if !strings.HasSuffix(config.Level, "_TRANSITIVE") {
		versions = versions[len(versions)-1:]
	}
	for _, v := range versions {
		var old struct {
			Schema string `json:"schema"`
		}
		if r.get(fmt.Sprintf("/subjects/%s/versions/%d", subject, v), &old) != http.StatusOK {
			continue
		}
		prev, err := avro.Parse(old.Schema)
		if err != nil {
			continue
		}
		check := avro.NewSchemaCompatibility()
		if strings.HasPrefix(config.Level, "BACKWARD") || strings.HasPrefix(config.Level, "FULL") {
			if err := check.Compatible(schema, prev); err != nil {
				return fmt.Sprintf("version %d: %v", v, err)
			}
		}
		if strings.HasPrefix(config.Level, "FORWARD") || strings.HasPrefix(config.Level, "FULL") {
			if err := check.Compatible(prev, schema); err != nil {
				return fmt.Sprintf("version %d: %v", v, err)
			}
		}
	}
	return ""
}

// get serves a GET through the fake's own handler (no network, no lock held).
func (r *Registry) get(path string, out any) int {
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code == http.StatusOK {
		_ = json.Unmarshal(rec.Body.Bytes(), out)
	}
	return rec.Code
}

// SecureRegistry is the registry behind HTTPS, requiring basic auth.
type SecureRegistry struct {
	*Registry
	srv *httptest.Server
}

// NewSecureRegistry starts a registry served over TLS with the given server
// configuration, that answers only requests with the user's basic auth.
func NewSecureRegistry(server *tls.Config, user, password string) *SecureRegistry {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	r := &Registry{Registry: srfake.NewRegistry(srfake.WithAuth(auth))}
	r.Intercept(r.refuseIncompatible)
	srv := httptest.NewUnstartedServer(r.Handler())
	srv.TLS = server
	srv.StartTLS()
	return &SecureRegistry{Registry: r, srv: srv}
}

// URL is the registry's https URL.
func (r *SecureRegistry) URL() string { return r.srv.URL }

// Close stops the server.
func (r *SecureRegistry) Close() { r.srv.Close() }
