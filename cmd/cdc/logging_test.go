package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A JSON log carries a problem's fields beside the error's text.
func TestJSONLogsCarryTheFixAsAnAttribute(t *testing.T) {
	cfg := &Config{Name: "shop"}
	cfg.Log.Format = "json"
	var out strings.Builder
	log := newLogger(cfg, &out)
	_, err := LoadConfig(writeConfig(t, strings.Replace(validConfig, "      id: customer_id\n", "      id: {column: customer_id, mask: hash}\n", 1)))
	log.Error("stopped", "err", fmt.Errorf("start: %w", errors.Join(errors.New("another"), err)))
	var record map[string]any
	if err := json.Unmarshal([]byte(out.String()), &record); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for key, want := range map[string]string{
		"err_where": "cdc.yaml:13",
		"err_what":  "entities[0].fields: hash masks need a secret salt",
		"err_fix":   "set masking.salt (e.g. masking: {salt: ${CDC_MASK_SALT}})",
	} {
		if got, _ := record[key].(string); !strings.HasSuffix(got, want) {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if text, _ := record["err"].(string); !strings.Contains(text, "another") || !strings.Contains(text, "hash masks need a secret salt; set masking.salt") {
		t.Errorf("the error's text changed: %q", text)
	}
}
