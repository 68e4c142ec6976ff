package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The deployment files work as written: the Kubernetes manifests' connector
// configuration loads, with standbys, on the port the probes and the scrape
// annotations use; the image and the systemd unit run the command the
// manifests and the manual name.
func TestDeploymentFilesAgreeWithTheDaemon(t *testing.T) {
	data, err := os.ReadFile("../../deploy/kubernetes/cdc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		docs[doc["kind"].(string)] = doc
	}
	for _, kind := range []string{"ConfigMap", "Deployment", "PodDisruptionBudget"} {
		if docs[kind] == nil {
			t.Fatalf("no %s in the manifests", kind)
		}
	}
	config := docs["ConfigMap"]["data"].(map[string]any)["cdc.yaml"].(string)
	// The CA the manifests mount from a Secret.
	config = strings.ReplaceAll(config, "/etc/cdc/tls/ca.crt", writeCA(t))
	path := filepath.Join(t.TempDir(), "cdc.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHOP_DSN", "postgres://cdc:secret@db:5432/shop")
	t.Setenv("KAFKA_PASSWORD", "secret")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("the manifests' configuration: %v", err)
	}
	if !cfg.Standby.Enabled || !strings.HasSuffix(cfg.HTTP.Listen, ":9464") || strings.HasPrefix(cfg.HTTP.Listen, "127.") {
		t.Errorf("standby %v, http.listen %q: want standbys, and the endpoints on every interface at 9464", cfg.Standby.Enabled, cfg.HTTP.Listen)
	}

	deployment := docs["Deployment"]["spec"].(map[string]any)
	if deployment["replicas"] != 2 {
		t.Errorf("replicas %v, want 2", deployment["replicas"])
	}
	pod := deployment["template"].(map[string]any)
	annotations := pod["metadata"].(map[string]any)["annotations"].(map[string]any)
	if annotations["prometheus.io/scrape"] != "true" || annotations["prometheus.io/port"] != "9464" || annotations["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v", annotations)
	}
	container := pod["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	probe := func(name string) string {
		return container[name].(map[string]any)["httpGet"].(map[string]any)["path"].(string)
	}
	if probe("livenessProbe") != "/healthz" || probe("readinessProbe") != "/readyz" {
		t.Errorf("probes %s, %s", probe("livenessProbe"), probe("readinessProbe"))
	}
	if port := container["ports"].([]any)[0].(map[string]any)["containerPort"]; port != 9464 {
		t.Errorf("container port %v", port)
	}
	if refs := container["envFrom"].([]any); len(refs) == 0 || refs[0].(map[string]any)["secretRef"] == nil {
		t.Error("the secrets do not come from a Secret")
	}
	args := strings.Join(toStrings(container["args"].([]any)), " ")

	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), `CMD ["run", "--config", "/etc/cdc/cdc.yaml"]`) || args != "run --config /etc/cdc/cdc.yaml" ||
		!strings.Contains(string(dockerfile), "USER 65532:65532") {
		t.Errorf("the image and the manifests run different commands, or the image runs as root: args %q", args)
	}
	unit, err := os.ReadFile("../../deploy/systemd/cdc.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/cdc run --config /etc/cdc/cdc.yaml") {
		t.Error("the systemd unit does not run cdc run --config /etc/cdc/cdc.yaml")
	}
}

func toStrings(values []any) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = v.(string)
	}
	return out
}

// writeCA writes a self-signed CA certificate and returns its file.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
