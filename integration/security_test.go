package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cdc-dev/cdc/integration/harness"
)

// Secrets the security tests give the daemon: none may appear in anything
// it prints or serves.
const (
	kafkaPassword    = "kafka-s3cret-password"
	registryPassword = "registry-s3cret-password"
)

// secureBroker replaces the scenario's broker with one on TLS (with client
// certificates when mtls) and SASL SCRAM-SHA-512, user cdc; more users with
// their ACLs may be added. It returns the CA that signed the broker's
// certificate.
func (s *scenario) secureBroker(mtls bool, serverName string, more ...kfake.Opt) *harness.CA {
	s.t.Helper()
	ca, err := harness.NewCA(s.t.TempDir(), "kafka")
	if err != nil {
		s.t.Fatal(err)
	}
	server, err := ca.ServerTLS("broker", mtls, serverName)
	if err != nil {
		s.t.Fatal(err)
	}
	opts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.TLS(server), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "cdc", kafkaPassword)}, more...)
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.kafka.Close()
	s.kafka, s.brokers = cluster, cluster.ListenAddrs()
	s.t.Cleanup(cluster.Close)
	return ca
}

// kafkaSecurity sets kafka.tls and kafka.sasl in the scenario's config.
func (s *scenario) kafkaSecurity(tlsBlock, saslBlock string) {
	s.t.Helper()
	s.editConfig("kafka:\n", "kafka:\n  tls: "+tlsBlock+"\n  sasl: "+saslBlock+"\n")
}

// TLS with SASL (SCRAM-SHA-512) and with client certificates, end to end;
// then each way it can fail, with its message from cdc validate.
func TestKafkaOverTLSWithSASLAndClientCertificates(t *testing.T) {
	t.Run("sasl_ssl", func(t *testing.T) {
		s := newScenario(t)
		ca := s.secureBroker(false, "127.0.0.1")
		s.env = append(s.env, "KAFKA_PASSWORD="+kafkaPassword)
		s.kafkaSecurity(fmt.Sprintf("{ca_file: %s}", ca.File), `{mechanism: scram-sha-512, username: cdc, password: "${KAFKA_PASSWORD}"}`)
		if out, err := s.validateOutput(); err != nil || !strings.Contains(out, "ok: kafka topics") {
			t.Fatalf("validate: %v\n%s", err, out)
		}
		s.start()
		s.verified()
		s.exec(`UPDATE customer SET email = 'over-tls@example.com' WHERE customer_id = 1`)
		s.verified()
	})
	t.Run("mtls", func(t *testing.T) {
		s := newScenario(t)
		ca := s.secureBroker(true, "127.0.0.1")
		cert, key, err := ca.Issue("cdc-client", true, "cdc")
		if err != nil {
			t.Fatal(err)
		}
		s.env = append(s.env, "KAFKA_PASSWORD="+kafkaPassword)
		s.kafkaSecurity(fmt.Sprintf("{ca_file: %s, cert_file: %s, key_file: %s}", ca.File, cert, key), `{mechanism: scram-sha-512, username: cdc, password: "${KAFKA_PASSWORD}"}`)
		s.start()
		s.verified()
	})
	for _, c := range []struct {
		name       string
		serverName string
		mtls       bool
		tls, sasl  string
		want       string
	}{
		{"wrong password", "127.0.0.1", false, "{ca_file: CA}", "{mechanism: scram-sha-512, username: cdc, password: not-the-password}",
			"(SASL SCRAM-SHA-512): most often a wrong username or password (check kafka.sasl's username and password"},
		{"unknown CA", "127.0.0.1", false, "{enabled: true}", `{mechanism: scram-sha-512, username: cdc, password: "${KAFKA_PASSWORD}"}`,
			"TLS handshake: the server's certificate is signed by an authority cdc does not trust: set kafka.tls.ca_file"},
		{"wrong server name", "broker.example", false, "{ca_file: CA}", `{mechanism: scram-sha-512, username: cdc, password: "${KAFKA_PASSWORD}"}`,
			"TLS handshake: the server's certificate is not valid for the name 127.0.0.1 (it names broker.example): connect by a name it carries, or set kafka.tls.server_name"},
		{"no client certificate", "127.0.0.1", true, "{ca_file: CA}", `{mechanism: scram-sha-512, username: cdc, password: "${KAFKA_PASSWORD}"}`,
			"the server refused cdc's client certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newScenario(t)
			ca := s.secureBroker(c.mtls, c.serverName)
			s.env = append(s.env, "KAFKA_PASSWORD="+kafkaPassword)
			s.kafkaSecurity(strings.ReplaceAll(c.tls, "CA", ca.File), c.sasl)
			out, err := s.validateOutput()
			if err == nil || !strings.Contains(out, c.want) {
				t.Errorf("validate: %v, want %q in:\n%s", err, c.want, out)
			}
			if strings.Contains(out, kafkaPassword) {
				t.Errorf("validate prints the password:\n%s", out)
			}
		})
	}
}

// A principal that authenticates but lacks an ACL is told which operation
// on which topic failed.
func TestKafkaACLRefusalIsNamed(t *testing.T) {
	s := newScenario(t)
	ca := s.secureBroker(false, "127.0.0.1", kfake.EnableACLs(),
		kfake.User("SCRAM-SHA-512", "reader", "reader-password",
			kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "*", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true},
			kfake.ACL{Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}))
	s.kafkaSecurity(fmt.Sprintf("{ca_file: %s}", ca.File), `{mechanism: scram-sha-512, username: reader, password: reader-password}`)
	s.start()
	s.mustExit("create topic shop.customer.v1", "lacks an ACL for this operation")
}

// The schema registry behind HTTPS with basic auth; a wrong password says so.
func TestRegistryOverHTTPSWithBasicAuth(t *testing.T) {
	s := newScenario(t)
	ca, err := harness.NewCA(t.TempDir(), "registry")
	if err != nil {
		t.Fatal(err)
	}
	server, err := ca.ServerTLS("registry", false, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	registry := harness.NewSecureRegistry(server, "cdc", registryPassword)
	t.Cleanup(registry.Close)
	s.env = append(s.env, "REGISTRY_PASSWORD=wrong")
	s.editConfig("# schema_registry: http://127.0.0.1:8081", fmt.Sprintf(`schema_registry: {url: %q, tls: {ca_file: %s}, username: cdc, password: "${REGISTRY_PASSWORD}"}`, registry.URL(), ca.File))
	out, err := s.validateOutput()
	if err == nil || !strings.Contains(out, "check kafka.schema_registry's username and password") {
		t.Errorf("validate with a wrong password: %v\n%s", err, out)
	}
	s.env = append(s.env, "REGISTRY_PASSWORD="+registryPassword)
	s.start()
	s.verified() // verify reads the schemas' ids back from the registry
}

// PostgreSQL over TLS with sslmode=verify-full, for the snapshot and the
// replication stream, by a role pg_hba.conf refuses without TLS.
func TestPostgresOverTLSWithVerifyFull(t *testing.T) {
	s := newScenario(t)
	if err := harness.Exec(s.ctx, pg.DSN("postgres"), fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s') THEN CREATE ROLE %[1]s LOGIN SUPERUSER PASSWORD '%[2]s'; END IF; END $$`,
		harness.TLSUser, harness.TLSPassword)); err != nil {
		t.Fatal(err)
	}
	s.dsn = pg.TLSDSN(s.name, "sslmode=disable")
	out, err := s.validateOutput()
	if err == nil || !strings.Contains(out, "no encryption") {
		t.Errorf("validate without TLS: %v, want the server's refusal\n%s", err, out)
	}
	s.dsn = pg.TLSDSN(s.name, "sslmode=verify-full&sslrootcert="+pg.CA.File)
	s.start()
	s.verified()
	s.exec(`UPDATE customer SET email = 'over-tls@example.com' WHERE customer_id = 1`)
	s.verified()
}

// MariaDB over TLS for every connection (checks, snapshot, binlog), by a
// user the server accepts only over TLS (REQUIRE SSL).
func TestMariaDBOverTLS(t *testing.T) {
	s := newMySQLScenario(t)
	user := "tls_" + s.name[len(s.name)-8:]
	s.exec(fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'maria-tls-secret' REQUIRE SSL", user),
		fmt.Sprintf("GRANT ALL ON *.* TO '%s'@'%%'", user))
	s.dsn = fmt.Sprintf("%s:maria-tls-secret@tcp(127.0.0.1:%d)/%s", user, maria.Port, s.name)
	out, err := s.validateOutput()
	if err == nil || !strings.Contains(out, "Access denied") {
		t.Errorf("validate without TLS: %v, want the server's refusal\n%s", err, out)
	}
	s.editConfig("  mysql:\n", fmt.Sprintf("  mysql:\n    tls: {ca_file: %s}\n", maria.CA.File))
	s.start()
	s.verified()
	s.exec(`UPDATE customer SET email = 'over-tls@example.com' WHERE customer_id = 1`)
	s.verified()
}

// Nothing the daemon prints or serves holds a secret it was given: logs at
// debug level, /metrics, /readyz, validate's output, its errors.
func TestSecretsNeverAppearInOutput(t *testing.T) {
	s := newScenario(t)
	ca := s.secureBroker(false, "127.0.0.1")
	registry := harness.NewRegistry()
	t.Cleanup(registry.Close)
	const dbPassword, salt = "db-s3cret-password", "a-s3cret-salt-of-some-length"
	if err := harness.Exec(s.ctx, pg.DSN("postgres"), fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdc_secret') THEN CREATE ROLE cdc_secret LOGIN SUPERUSER PASSWORD '%s'; END IF; END $$`, dbPassword)); err != nil {
		t.Fatal(err)
	}
	s.dsn = fmt.Sprintf("postgres://cdc_secret:%s@127.0.0.1:%d/%s?sslmode=disable", dbPassword, pg.Port, s.name)
	s.env = append(s.env, "KAFKA_PASSWORD="+kafkaPassword, "CDC_MASK_SALT="+salt)
	s.kafkaSecurity(fmt.Sprintf("{ca_file: %s}", ca.File), `{mechanism: scram-sha-512, username: cdc, password: "${KAFKA_PASSWORD}"}`)
	// Credentials in the registry's URL are taken out, and never shown.
	withCredentials := strings.Replace(registry.URL(), "http://", "http://cdc:"+registryPassword+"@", 1)
	s.editConfig("# schema_registry: http://127.0.0.1:8081", "schema_registry: "+withCredentials, "level: info", "level: debug",
		"# masking:\n#   salt: ${CDC_MASK_SALT}", "masking:\n  salt: ${CDC_MASK_SALT}")
	secrets := []string{kafkaPassword, registryPassword, dbPassword, salt}
	var printed strings.Builder
	out, _ := s.validateOutput()
	printed.WriteString(out)
	d := s.start()
	s.verified()
	addr, err := d.MetricsAddress(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		printed.Write(body)
	}
	_ = d.Stop(30 * time.Second)
	printed.WriteString(d.Logs())
	// A failing start: the broker is gone.
	s.kafka.Close()
	failing := s.launch("run", "--config", s.config)
	_ = failing.Wait(2 * time.Minute)
	printed.WriteString(failing.Logs())
	for _, secret := range secrets {
		if strings.Contains(printed.String(), secret) {
			t.Errorf("a secret appears in what cdc printed or served: %q", secret)
		}
	}
	if !strings.Contains(printed.String(), registry.URL()) && !strings.Contains(printed.String(), "level=DEBUG") {
		t.Errorf("the test saw nothing of what it checks:\n%s", truncate(printed.String(), 2000))
	}
}
