package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db/dbtest"
)

// exitOf runs the real binary and returns its exit status, stdout and stderr.
func exitOf(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd, stdout, stderr := command(t, env, args...)
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	require.NoError(t, err)
	return 0, stdout.String(), stderr.String()
}

// commandPaths lists every command of the tree ("serve", "merchant api-key create").
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	var out [][]string
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() {
			continue
		}
		path := append(append([]string{}, prefix...), sub.Name())
		out = append(out, path)
		out = append(out, commandPaths(sub, path)...)
	}
	return out
}

// TestBinaryEveryCommandAnswersHelp: every command, run as the real binary,
// answers --help (and -h) with its usage and every one of its flags, exits
// 0, and does nothing else: serve does not start, migrate does not ask for
// DATABASE_URL, a broken environment is not even read.
func TestBinaryEveryCommandAnswersHelp(t *testing.T) {
	t.Parallel()
	root := newRootCmd(env(nil), io.Discard, io.Discard)
	paths := commandPaths(root, nil)
	require.Greater(t, len(paths), 10)
	for _, path := range append(paths, []string{}) {
		cmd, _, _ := root.Find(path)
		for _, help := range []string{"--help", "-h"} {
			code, stdout, stderr := exitOf(t, []string{"LOG_LEVEL=loud", "ROLE=boss"}, append(path, help)...)
			require.Equal(t, 0, code, "%v %s: stderr %s", path, help, stderr)
			require.Empty(t, stderr, "%v %s", path, help)
			require.Contains(t, stdout, "Usage:", "%v %s", path, help)
			require.Contains(t, stdout, "boohpay "+strings.Join(path, " "), "%v %s", path, help)
			cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
				require.Contains(t, stdout, "--"+f.Name, "%v %s lists its flag", path, help)
			})
		}
	}
}

// TestBinaryExitCodes: a usage error exits 2 with one line naming the
// command's --help; a failure exits 1 with one line; config errors read as
// they always did.
func TestBinaryExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{nil, nil, 2, "boohpay: boohpay needs a command"},
		{nil, []string{"frobnicate"}, 2, `boohpay: unknown command "frobnicate" for "boohpay"`},
		{nil, []string{"serve", "--port", "80"}, 2, "boohpay: unknown flag: --port (see boohpay serve --help)"},
		{nil, []string{"serve", "now"}, 2, `boohpay: unknown command "now" for "boohpay serve"`},
		{nil, []string{"migrate"}, 2, "boohpay: boohpay migrate needs a command: one of down, up, version"},
		{nil, []string{"migrate", "down", "two"}, 2, `boohpay: migrate down: N must be a positive integer, got "two"`},
		{nil, []string{"merchant", "create"}, 2, "boohpay: merchant create: --name is required (see boohpay merchant create --help)"},
		{nil, []string{"merchant", "create", "--name"}, 2, "boohpay: flag needs an argument: --name"},
		{nil, []string{"merchant", "api-key", "create", "--merchant", "acme"}, 2, "--merchant must be a merchant id"},
		{nil, []string{"webhooks", "listen"}, 2, "boohpay: webhooks listen: --secret is required"},
		{nil, []string{"merchant", "api-key", "rotate"}, 2, "--key (the leaked key) or --merchant is required"},
		{nil, []string{"merchant", "api-key", "rotate", "--key", "0190a0a0-0000-7000-8000-000000000000"}, 2, "is a key id: give --merchant too"},
		{nil, []string{"migrate", "up"}, 1, "boohpay: DATABASE_URL is not set"},
		{[]string{"ROLE=boss"}, []string{"serve"}, 1, `boohpay: invalid ROLE="boss": want one of all, api, worker`},
		{[]string{"LOG_LEVEL=loud"}, []string{"migrate", "up"}, 1, `boohpay: invalid LOG_LEVEL="loud": want debug, info, warn or error`},
		{[]string{"DATABASE_URL=postgres://127.0.0.1:1/x?connect_timeout=1"}, []string{"merchant", "create", "--name", "A",
			"--webhook-url", "http://127.0.0.1:4242/hooks"}, 1,
			"boohpay: merchant create: --webhook-url: destination address is private, loopback, link-local or otherwise not public: 127.0.0.1 (for a receiver on this machine or a private network, set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true"},
	} {
		code, stdout, stderr := exitOf(t, tc.env, tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
		require.Empty(t, stdout, "%v", tc.args)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		require.Contains(t, stderr, tc.want, "%v", tc.args)
	}
}

// TestBinaryVersion: `boohpay version` names the module version and the
// commit Go stamped into the build (make build stamps it).
func TestBinaryVersion(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := exitOf(t, []string{"LOG_LEVEL=loud"}, "version")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^boohpay (\(devel\)|v\S+) commit (\S+)( \(modified\))? go1\.\S+\n$`, stdout)

	// In a plain git checkout the commit is HEAD's. (A git worktree and a
	// tree without git or .git get "unknown": Go stamps no commit there.)
	gitDir, err1 := exec.Command("git", "rev-parse", "--git-dir").Output()
	commonDir, err2 := exec.Command("git", "rev-parse", "--git-common-dir").Output()
	if err1 != nil || err2 != nil || strings.TrimSpace(string(gitDir)) != strings.TrimSpace(string(commonDir)) {
		t.Log("not a plain git checkout: the commit is not compared")
		return
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	require.NoError(t, err)
	require.Contains(t, stdout, "commit "+strings.TrimSpace(string(head)))
}

// TestMerchantAPIKeyCommands: an operator issues a key to a merchant locked
// out of its account, and rotates a leaked key in one command: the new key
// works, the leaked one is refused on the next request.
func TestMerchantAPIKeyCommands(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	vars := map[string]string{"DATABASE_URL": url}
	out, err := runCmd(t, vars, "merchant", "create", "--name", "Keys")
	require.NoError(t, err)
	var m struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &m))

	store := dbtest.Open(t, url)
	srv := api.NewServer(api.Config{}, slog.New(slog.DiscardHandler), store, nil)
	status := func(key string) int {
		req := httptest.NewRequest(http.MethodGet, "/v1/payments", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusOK, status(m.APIKey))

	// Locked out (the only key revoked by SQL): an operator issues one.
	dbtest.RevokeAPIKey(t, store, m.APIKey)
	out, err = runCmd(t, vars, "merchant", "api-key", "create", "--merchant", m.ID, "--name", "recovered")
	require.NoError(t, err)
	var issued struct{ ID, Key, Name, Prefix string }
	require.NoError(t, json.Unmarshal([]byte(out), &issued))
	require.Equal(t, "recovered", issued.Name)
	require.True(t, strings.HasPrefix(issued.Key, issued.Prefix))
	require.Equal(t, http.StatusOK, status(issued.Key))

	// Leaked: one command replaces it.
	out, err = runCmd(t, vars, "merchant", "api-key", "rotate", "--merchant", m.ID, "--key", issued.ID)
	require.NoError(t, err)
	var rotated struct {
		APIKey  struct{ ID, Key string } `json:"api_key"`
		Revoked []struct{ ID string }    `json:"revoked"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rotated))
	require.Len(t, rotated.Revoked, 1)
	require.Equal(t, issued.ID, rotated.Revoked[0].ID)
	require.Equal(t, http.StatusUnauthorized, status(issued.Key))
	require.Equal(t, http.StatusOK, status(rotated.APIKey.Key))

	// The leaked key itself is all a newcomer needs: its merchant is found from it.
	leaked := rotated.APIKey.Key
	out, err = runCmd(t, vars, "merchant", "api-key", "rotate", "--key", leaked)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &rotated))
	require.Len(t, rotated.Revoked, 1)
	require.Equal(t, http.StatusUnauthorized, status(leaked))
	require.Equal(t, http.StatusOK, status(rotated.APIKey.Key))
	_, err = runCmd(t, vars, "merchant", "api-key", "rotate", "--key", leaked)
	require.ErrorContains(t, err, "no active API key is --key")
	_, err = runCmd(t, vars, "merchant", "api-key", "rotate", "--key", rotated.APIKey.Key, "--merchant", "0190a0a0-0000-7000-8000-000000000000")
	require.ErrorContains(t, err, "belongs to another merchant")
	require.Equal(t, http.StatusOK, status(rotated.APIKey.Key), "refused: nothing revoked")

	// Without --key, every other key goes.
	_, err = runCmd(t, vars, "merchant", "api-key", "create", "--merchant", m.ID)
	require.NoError(t, err)
	out, err = runCmd(t, vars, "merchant", "api-key", "rotate", "--merchant", m.ID)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal([]byte(out), &rotated))
	require.Len(t, rotated.Revoked, 2)
	require.Equal(t, http.StatusOK, status(rotated.APIKey.Key))

	_, err = runCmd(t, vars, "merchant", "api-key", "create", "--merchant", "0190a0a0-0000-7000-8000-000000000000")
	require.ErrorContains(t, err, "no merchant 0190a0a0-0000-7000-8000-000000000000")
	require.Equal(t, 1, exitCode(err))
}

// TestMakeRunPortKnob: make run's local Postgres port is RUN_PG_PORT, and a
// port it cannot use says which variable picks another.
func TestMakeRunPortKnob(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("bash", "../../scripts/run.sh")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "RUN_PG_PORT=99999"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "want a failure, got %v: %s", err, out)
	require.Contains(t, string(out), "run.sh: starting a local Postgres on 127.0.0.1:99999 (another port: RUN_PG_PORT=NNNNN make run")
	require.Contains(t, string(out), "pg.sh: error: bad port '99999'")
	require.Contains(t, string(out), "could not start the local Postgres on port 99999: if the port is taken, run RUN_PG_PORT=NNNNN make run")
}
