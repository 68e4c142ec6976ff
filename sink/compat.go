package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/registry"
)

// checkCompatible checks a schema against the versions of its subject that the
// subject's compatibility level names, before it is registered. The registry
// would refuse an incompatible schema too, but with a message that rarely names
// the field; this check says which field breaks which consumers.
//
// Levels: BACKWARD (consumers on the new schema read the latest version's
// records), FORWARD (consumers on the latest version read new records), FULL
// (both), their _TRANSITIVE forms (against every version), NONE.
func (k *Kafka) checkCompatible(ctx context.Context, client *registry.Client, subject string, schema avro.Schema) error {
	level, err := k.compatibilityLevel(ctx, subject)
	if err != nil {
		return err
	}
	if level == "NONE" {
		return nil
	}
	versions, err := client.GetVersions(ctx, subject)
	if isNotFound(err) {
		return nil // a new subject: nothing to be compatible with
	}
	if err != nil {
		return fmt.Errorf("list versions of subject %s: %w", subject, err)
	}
	if len(versions) == 0 {
		return nil
	}
	if !strings.HasSuffix(level, "_TRANSITIVE") {
		versions = versions[len(versions)-1:]
	}
	backward := strings.HasPrefix(level, "BACKWARD") || strings.HasPrefix(level, "FULL")
	forward := strings.HasPrefix(level, "FORWARD") || strings.HasPrefix(level, "FULL")
	var problems []string
	for _, v := range versions {
		old, err := client.GetSchemaByVersion(ctx, subject, v)
		if err != nil {
			return fmt.Errorf("read version %d of subject %s: %w", v, subject, err)
		}
		if backward {
			if reason := incompatibility(schema, old); reason != "" {
				problems = append(problems, fmt.Sprintf("consumers using the new schema cannot read records written with version %d: %s", v, reason))
			}
		}
		if forward {
			if reason := incompatibility(old, schema); reason != "" {
				problems = append(problems, fmt.Sprintf("consumers still using version %d cannot read records written with the new schema: %s", v, reason))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the schema is not %s compatible with subject %s (its compatibility level): %s; make the change compatible (add fields with defaults, never retype or drop one without a default), or publish it as a new topic version",
			level, subject, strings.Join(problems, "; "))
	}
	return nil
}

// compatibilityLevel is the subject's level, or the registry's global one.
// hamba/avro's GetCompatibilityLevel reads the "compatibility" key, which only
// PUT answers carry: GET /config answers "compatibilityLevel", so it is read here.
func (k *Kafka) compatibilityLevel(ctx context.Context, subject string) (string, error) {
	for _, path := range []string{"/config/" + url.PathEscape(subject) + "?defaultToGlobal=true", "/config"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(k.cfg.SchemaRegistry, "/")+path, nil)
		if err != nil {
			return "", fmt.Errorf("schema registry %s: %w", k.cfg.SchemaRegistry, err)
		}
		req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json")
		resp, err := registryHTTP.Do(req)
		if err != nil {
			return "", fmt.Errorf("read the compatibility level of subject %s: %w", subject, err)
		}
		var body struct {
			Level      string `json:"compatibilityLevel"`
			Compatible string `json:"compatibility"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound:
			continue // no level of the subject's own
		case resp.StatusCode != http.StatusOK || err != nil:
			return "", fmt.Errorf("read the compatibility level of subject %s: HTTP %d %v", subject, resp.StatusCode, err)
		case body.Level != "":
			return body.Level, nil
		case body.Compatible != "":
			return body.Compatible, nil
		}
	}
	return "BACKWARD", nil // the registry's documented default
}

var registryHTTP = &http.Client{Timeout: 30 * time.Second}

func isNotFound(err error) bool {
	var re registry.Error
	return errors.As(err, &re) && re.StatusCode == 404
}

// incompatibility says why reader cannot read what writer wrote, naming the
// field, or returns "" when it can. Avro's resolution rules decide (hamba/avro's
// checker); the walk only finds the field to name.
func incompatibility(reader, writer avro.Schema) string {
	err := avro.NewSchemaCompatibility().Compatible(reader, writer)
	if err == nil {
		return ""
	}
	if reason := fieldIncompatibility(reader, writer, ""); reason != "" {
		return reason
	}
	return err.Error()
}

func fieldIncompatibility(reader, writer avro.Schema, path string) string {
	rr, ok1 := reader.(*avro.RecordSchema)
	wr, ok2 := writer.(*avro.RecordSchema)
	if !ok1 || !ok2 {
		return ""
	}
	for _, rf := range rr.Fields() {
		wf := fieldOf(wr, rf)
		name := path + rf.Name()
		if wf == nil {
			if !rf.HasDefault() {
				return fmt.Sprintf("field %q is not in the writer's schema and has no default in the reader's", name)
			}
			continue
		}
		if err := avro.NewSchemaCompatibility().Compatible(rf.Type(), wf.Type()); err != nil {
			if inner := fieldIncompatibility(rf.Type(), wf.Type(), name+"."); inner != "" {
				return inner
			}
			return fmt.Sprintf("field %q: the reader's type %s cannot read the writer's %s (%v)", name, rf.Type(), wf.Type(), err)
		}
	}
	return ""
}

func fieldOf(s *avro.RecordSchema, f *avro.Field) *avro.Field {
	for _, w := range s.Fields() {
		if w.Name() == f.Name() {
			return w
		}
	}
	for _, w := range s.Fields() {
		for _, alias := range f.Aliases() {
			if w.Name() == alias {
				return w
			}
		}
	}
	return nil
}
