package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An OAUTHBEARER token file is read again when it changes (a sidecar
// rotates it); a token command runs at each authentication; neither's
// content appears in an error.
func TestOAuthTokensFollowTheirFileAndCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := &tokenSource{file: file}
	if got, err := tokens.token(context.Background()); err != nil || got != "first-token" {
		t.Fatalf("token %q, %v", got, err)
	}
	if err := os.WriteFile(file, []byte("second-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	if got, err := tokens.token(context.Background()); err != nil || got != "second-token" {
		t.Errorf("after the file changed: %q, %v", got, err)
	}
	command := &tokenSource{command: "echo command-token"}
	if got, err := command.token(context.Background()); err != nil || got != "command-token" {
		t.Errorf("command: %q, %v", got, err)
	}
	failing := &tokenSource{command: "echo secret-in-stderr >&2; exit 3"}
	if _, err := failing.token(context.Background()); err == nil || strings.Contains(err.Error(), "secret-in-stderr") {
		t.Errorf("a failing command: %v", err)
	}
}

// MSK's IAM authentication takes the credentials of the standard AWS chain,
// here the environment.
func TestAWSCredentialsComeFromTheStandardChain(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")
	t.Setenv("AWS_SESSION_TOKEN", "session")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	auth, err := awsCredentials(context.Background())
	if err != nil || auth.AccessKey != "AKIDEXAMPLE" || auth.SecretKey != "wJalrXUtnFEMI" || auth.SessionToken != "session" {
		t.Errorf("got %+v, %v", auth, err)
	}
}
