package sink

import (
	"context"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// checkCompatible checks a schema against the versions of its subject that the
// subject's compatibility level names, before it is registered. The registry
// would refuse an incompatible schema too, but with a message that rarely names
// the field; this check says which field breaks which consumers.
//
// Levels: BACKWARD (consumers on the new schema read the latest version's
// records), FORWARD (consumers on the latest version read new records), FULL
// (both), their _TRANSITIVE forms (against every version), NONE.
func (k *Kafka) checkCompatible(ctx context.Context, client *sr.Client, subject string, schema avro.Schema) error {
	level, err := k.compatibilityLevel(ctx, client, subject)
	if err != nil {
		return err
	}
	if level == "NONE" {
		return nil
	}
	versions, err := client.SubjectVersions(ctx, subject)
	if isNotFound(err) {
		return nil // a new subject: nothing to be compatible with
	}
	if err != nil {
		return fmt.Errorf("list versions of subject %s: %w", subject, registryError(err))
	}
	if len(versions) == 0 {
		return nil
	}
	if !strings.HasSuffix(level, "_TRANSITIVE") {
		versions = versions[len(versions)-1:]
	}
	var problems []string
	for _, v := range versions {
		registered, err := client.SchemaByVersion(ctx, subject, v)
		if err != nil {
			return fmt.Errorf("read version %d of subject %s: %w", v, subject, registryError(err))
		}
		old, err := avro.Parse(registered.Schema.Schema)
		if err != nil {
			return fmt.Errorf("version %d of subject %s is not an Avro schema cdc can read: %w", v, subject, err)
		}
		problems = append(problems, Incompatibilities(level, old, schema, fmt.Sprintf("version %d", v))...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("the schema is not %s compatible with subject %s (its compatibility level): %s; make the change compatible (add fields with defaults, never retype or drop one without a default), or publish it as a new topic version",
			level, subject, strings.Join(problems, "; "))
	}
	return nil
}

// Incompatibilities says why schema breaks the consumers of old, named in
// messages as what, at a compatibility level (BACKWARD, FORWARD, FULL, their
// _TRANSITIVE forms, NONE): nothing when it does not.
func Incompatibilities(level string, old, schema avro.Schema, what string) []string {
	var problems []string
	if strings.HasPrefix(level, "BACKWARD") || strings.HasPrefix(level, "FULL") {
		if reason := incompatibility(schema, old); reason != "" {
			problems = append(problems, fmt.Sprintf("consumers using the new schema cannot read records written with %s: %s", what, reason))
		}
	}
	if strings.HasPrefix(level, "FORWARD") || strings.HasPrefix(level, "FULL") {
		if reason := incompatibility(old, schema); reason != "" {
			problems = append(problems, fmt.Sprintf("consumers still using %s cannot read records written with the new schema: %s", what, reason))
		}
	}
	return problems
}

// compatibilityLevel is the subject's level, or the registry's global one.
func (k *Kafka) compatibilityLevel(ctx context.Context, client *sr.Client, subject string) (string, error) {
	results := client.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)
	if len(results) == 1 && results[0].Err == nil && results[0].Level != 0 {
		return results[0].Level.String(), nil
	}
	if len(results) == 1 && results[0].Err != nil && !isNotFound(results[0].Err) {
		return "", fmt.Errorf("read the compatibility level of subject %s: %w", subject, registryError(results[0].Err))
	}
	return "BACKWARD", nil // the registry's documented default
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
