package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db/dbtest"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	binaryOut  []byte
)

// binary builds cmd/boohpay once per test process, the way `make build` does.
func binary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "boohpay-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "boohpay")
		cmd := exec.Command("go", "build", "-buildvcs=auto", "-o", binaryPath, ".")
		binaryOut, binaryErr = cmd.CombinedOutput()
	})
	require.NoError(t, binaryErr, "go build: %s", binaryOut)
	return binaryPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaryPath != "" {
		os.RemoveAll(filepath.Dir(binaryPath))
	}
	os.Exit(code)
}

// command returns the binary run with exactly env (nothing inherited).
func command(t *testing.T, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append([]string{}, env...) // never nil: nil would inherit ours, DATABASE_URL included
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func TestBinaryBadConfigExitsWithOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{[]string{"ROLE=boss"}, []string{"serve"}, `boohpay: invalid ROLE="boss": want one of all, api, worker`},
		{[]string{"WEBHOOK_TIMEOUT=soon"}, []string{"serve"}, `boohpay: invalid WEBHOOK_TIMEOUT="soon": want a positive duration such as 10s`},
		{nil, []string{"migrate", "up"}, "boohpay: DATABASE_URL is not set"},
	} {
		cmd, stdout, stderr := command(t, tc.env, tc.args...)
		err := cmd.Run()
		var exit *exec.ExitError
		require.True(t, errors.As(err, &exit), "want a non-zero exit, got %v", err)
		require.Equal(t, 1, exit.ExitCode())
		require.Empty(t, stdout.String())
		require.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr)
		require.True(t, strings.HasPrefix(stderr.String(), tc.want), "stderr: %q", stderr)
	}
}

// TestBinarySIGTERM: the real process, signalled as an orchestrator does,
// drains and exits 0.
func TestBinarySIGTERM(t *testing.T) {
	t.Parallel()
	cmd, _, _ := command(t, []string{
		"DATABASE_URL=" + dbtest.URL(t), "HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=json",
	}, "serve")
	logs := &dbtest.Logs{}
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	require.Eventually(t, func() bool {
		line := logs.Msg("listening")
		if line == nil {
			return false
		}
		res, err := http.Get("http://" + line["addr"].(string) + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "log:\n%s", logs)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "exit 0 after SIGTERM; log:\n%s", logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM; log:\n%s", logs)
	}
	require.NotNil(t, logs.Msg("stopped"))
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var line map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &line), "LOG_FORMAT=json: every line is JSON: %s", l)
	}
}
