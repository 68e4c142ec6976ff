package main

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/cdc-dev/cdc/sink"
)

// compatibilityLevels are the levels --compatibility takes, as a schema
// registry names them.
var compatibilityLevels = []string{"BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"}

// errNotAtRevision says a file is not in the revision: a new schema.
var errNotAtRevision = errors.New("not in the revision")

// validateAgainst checks each entity's schemas against the same files at a git
// revision, at a compatibility level: what a registry would check, where none
// is reachable (a CI job on a pull request). A key schema must not change at
// all: a compacted topic would keep an entity's old and new key as two keys.
func validateAgainst(r *report, c *connector, ref, level string) {
	var errs []error
	for _, e := range c.entities {
		path := c.cfg.schemaPath(e.SchemaFile)
		text, err := fileAt(ref, path)
		if errors.Is(err, errNotAtRevision) {
			continue // a new entity, or a new file: nothing to break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: entity %q: %w", e.Origin, e.Name, err))
			continue
		}
		parsed, err := avro.ParseBytes(text)
		old, ok := parsed.(*avro.RecordSchema)
		if err != nil || !ok {
			errs = append(errs, fmt.Errorf("%s: entity %q: %s at %s is not an Avro record schema: nothing to compare with", e.Origin, e.Name, e.SchemaFile, ref))
			continue
		}
		var problems []string
		before := *e
		before.Schema = old
		oldKey, keyErr := before.KeySchema()
		newKey, _ := e.KeySchema()
		if keyErr == nil && oldKey.String() != newKey.String() {
			problems = append(problems, fmt.Sprintf("the key changes from %s to %s: a compacted topic would keep each entity's old and new key as two keys", oldKey, newKey))
		}
		problems = append(problems, sink.Incompatibilities(level, old, e.Schema, e.SchemaFile+" at "+ref)...)
		if len(problems) > 0 {
			errs = append(errs, fmt.Errorf("%s: entity %q: the schema is not %s compatible with %s at %s: %s; make the change compatible (add fields with defaults, never retype or drop one without a default), or publish it as a new topic version",
				e.Origin, e.Name, level, e.SchemaFile, ref, strings.Join(problems, "; ")))
		}
	}
	if r.check("schemas against "+ref, errors.Join(errs...)) {
		fmt.Fprintf(r.stdout, "ok: schemas %s compatible with %s\n", level, ref)
	}
}

// fileAt reads a file as it is at a git revision of the repository it is in.
func fileAt(ref, path string) ([]byte, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	git := func(dir string, args ...string) ([]byte, error) {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	top, err := git(filepath.Dir(abs), "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("--against needs the schema files in a git repository: %w", err)
	}
	root := strings.TrimSpace(string(top))
	rel, err := filepath.Rel(root, abs)
	if err != nil {
		return nil, err
	}
	if _, err := git(root, "rev-parse", "--verify", "--quiet", ref+"^{commit}"); err != nil {
		return nil, fmt.Errorf("--against %s: no such revision in %s", ref, root)
	}
	out, err := git(root, "show", ref+":"+filepath.ToSlash(rel))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotAtRevision, err)
	}
	return out, nil
}
