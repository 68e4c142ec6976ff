package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/cdc-dev/cdc/internal/tlsconfig"
)

// SASL mechanisms, as kafka.sasl.mechanism names them.
var saslMechanisms = []string{"plain", "scram-sha-256", "scram-sha-512", "oauthbearer", "aws-msk-iam"}

// tlsSettings turns a TLS block into the settings tlsconfig builds from.
func (t *TLSConfig) settings() tlsconfig.Settings {
	s := tlsconfig.Settings{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName,
		MinVersion: t.MinVersion, Verify: tlsconfig.Verification(t.Mode)}
	if t.InsecureSkipVerify {
		s.Verify = tlsconfig.Required
	}
	return s
}

// tlsFor builds the TLS configuration of a block (nil when it is off), and
// warns at every start of one that verifies nothing.
func tlsFor(key string, t *TLSConfig, log *slog.Logger) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	c, err := tlsconfig.Build(t.settings())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if c.InsecureSkipVerify && c.VerifyPeerCertificate == nil && log != nil {
		log.Warn(key + " verifies no certificate (mode required or insecure_skip_verify): the connection is encrypted, but anyone on the network path can read and change it; set ca_file and verify the server")
	}
	return c, nil
}

// saslMechanism builds the SASL mechanism of kafka.sasl (nil when unset).
func saslMechanism(s *SASLConfig) (sasl.Mechanism, error) {
	if s == nil {
		return nil, nil
	}
	switch s.Mechanism {
	case "plain":
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case "scram-sha-256":
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case "scram-sha-512":
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	case "oauthbearer":
		tokens := &tokenSource{file: s.TokenFile, command: s.TokenCommand}
		return oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			token, err := tokens.token(ctx)
			return oauth.Auth{Token: token, Extensions: s.Extensions}, err
		}), nil
	case "aws-msk-iam":
		return aws.ManagedStreamingIAM(awsCredentials), nil
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism %q: want one of %s", s.Mechanism, strings.Join(saslMechanisms, ", "))
}

// awsCredentials reads AWS credentials for MSK's IAM authentication from the
// standard chain: environment, shared files and profile, web identity, the
// container's or instance's role. Called at each authentication, it follows
// the credentials as they rotate.
func awsCredentials(ctx context.Context) (aws.Auth, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Auth{}, fmt.Errorf("kafka.sasl aws-msk-iam: load AWS credentials: %w", err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return aws.Auth{}, fmt.Errorf("kafka.sasl aws-msk-iam: no AWS credentials (environment, ~/.aws, web identity, container or instance role): %w", err)
	}
	return aws.Auth{AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}, nil
}

// tokenSource gives OAUTHBEARER tokens: from a file, read again whenever it
// changed (a sidecar rotates it), or from a command run at each
// authentication.
type tokenSource struct {
	file, command string
	mu            sync.Mutex
	modTime       time.Time
	cached        string
}

// maxTokenSize bounds a token file or a command's output.
const maxTokenSize = 64 << 10

func (t *tokenSource) token(ctx context.Context) (string, error) {
	if t.command != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var out, errOut bytes.Buffer
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", t.command)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			// The command's output may hold the token: it is not shown.
			return "", fmt.Errorf("kafka.sasl.token_command failed (%v); its error output has %d bytes, not shown", err, errOut.Len())
		}
		if out.Len() == 0 || out.Len() > maxTokenSize {
			return "", fmt.Errorf("kafka.sasl.token_command printed %d bytes: want a token of at most %d", out.Len(), maxTokenSize)
		}
		return strings.TrimSpace(out.String()), nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	info, err := os.Stat(t.file)
	if err != nil {
		return "", fmt.Errorf("kafka.sasl.token_file: %w", err)
	}
	if !info.ModTime().Equal(t.modTime) || t.cached == "" {
		if !info.Mode().IsRegular() || info.Size() > maxTokenSize {
			return "", fmt.Errorf("kafka.sasl.token_file %s is not a regular file of at most %d bytes", t.file, maxTokenSize)
		}
		data, err := os.ReadFile(t.file)
		if err != nil {
			return "", fmt.Errorf("kafka.sasl.token_file: %w", err)
		}
		token := strings.TrimSpace(string(data))
		if token == "" {
			return "", errors.New("kafka.sasl.token_file is empty")
		}
		t.cached, t.modTime = token, info.ModTime()
	}
	return t.cached, nil
}
