package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db"
)

// TestRiverUIInChromium opens the River UI in a real headless Chromium: the
// page is refused without the admin token, and with it the single-page app
// loads, calls its API and lists the job; a write from the page (same
// origin) passes the cross-origin guard.
func TestRiverUIInChromium(t *testing.T) {
	t.Parallel()
	b := setup(t, withConfig(api.Config{AdminToken: adminToken}))
	job, err := b.river.Insert(context.Background(), db.DeliveryArgs{DeliveryID: uuid.New()}, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(b.e)
	t.Cleanup(srv.Close)
	browser := startChromium(t)

	// No token: the browser is challenged for credentials and, having none
	// to give, cannot open the page. From a page of the same origin, the UI
	// and its API answer 401 (credentials "omit": a headless browser would
	// otherwise wait on the login prompt the challenge raises).
	require.Equal(t, "net::ERR_INVALID_AUTH_CREDENTIALS", browser.navigate(srv.URL+"/admin/river/jobs?state=available"))
	require.Empty(t, browser.navigate(srv.URL+"/healthz"))
	for _, path := range []string{"/admin/river/jobs?state=available", "/admin/river/api/jobs?state=available"} {
		require.Equal(t, "401", browser.eval(`fetch("`+path+`", {credentials: "omit"}).then(r => String(r.status))`), path)
	}

	// With it (basic auth, as a browser sends after its prompt): the app
	// renders the available jobs from its API.
	browser.setHeader("Authorization", basicAuth("admin", adminToken))
	require.Empty(t, browser.navigate(srv.URL+"/admin/river/jobs?state=available"))
	browser.waitFor(`document.body.innerText.includes("webhook_delivery")`)
	require.Contains(t, browser.eval(`document.title`), "River")

	// The UI's own writes are same-origin: cancelling the job works.
	status := browser.eval(fmt.Sprintf(`fetch("/admin/river/api/jobs/cancel", {
		method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({ids: ["%d"]}),
	}).then(r => String(r.status))`, job.Job.ID))
	require.Equal(t, "200", status)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM river_job WHERE id = $1 AND state = 'cancelled'`, job.Job.ID))
}

// chromium drives a headless Chromium over the DevTools protocol on a pipe
// (--remote-debugging-pipe: JSON messages ended by NUL, read on fd 3 and
// written on fd 4), so the test needs neither a driver binary nor a
// websocket library.
type chromium struct {
	t       *testing.T
	in      *os.File // Chromium's fd 3
	session string   // the page's, from Target.attachToTarget

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMessage
	dead    error
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    any             `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// chromiumBinary finds Debian's chromium (apt-get install chromium). Without
// it the browser tests skip, except in CI (CI=true), where they fail.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI must install it (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the browser test")
	return ""
}

func startChromium(t *testing.T) *chromium {
	t.Helper()
	bin := chromiumBinary(t)
	profile := t.TempDir() // removed after Chromium has exited: cleanups run last-in first-out
	cmdR, cmdW, err := os.Pipe()
	require.NoError(t, err)
	outR, outW, err := os.Pipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--user-data-dir="+profile, "--remote-debugging-pipe", "about:blank")
	cmd.ExtraFiles = []*os.File{cmdR, outW} // fds 3 and 4
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	cmdR.Close()
	outW.Close()

	c := &chromium{t: t, in: cmdW, pending: map[int]chan cdpMessage{}}
	go c.read(outR)
	t.Cleanup(func() {
		_, _ = c.call("", "Browser.close", nil)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		cmdW.Close()
		if t.Failed() {
			t.Logf("chromium stderr (tail):\n%s", tail(stderr.String(), 4000))
		}
	})

	var target struct {
		TargetID string `json:"targetId"`
	}
	c.do("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	c.do("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	c.session = attached.SessionID
	c.do(c.session, "Network.enable", nil, nil)
	c.do(c.session, "Page.enable", nil, nil)
	return c
}

func (c *chromium) read(r *os.File) {
	br := bufio.NewReader(r)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			c.mu.Lock()
			c.dead = fmt.Errorf("chromium closed its pipe: %w", err)
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		var m cdpMessage
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil || m.ID == 0 {
			continue // events: the test polls the page instead
		}
		c.mu.Lock()
		ch := c.pending[m.ID]
		delete(c.pending, m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends one command and waits for its answer.
func (c *chromium) call(session, method string, params any) (json.RawMessage, error) {
	if params == nil {
		params = map[string]any{}
	}
	c.mu.Lock()
	if c.dead != nil {
		c.mu.Unlock()
		return nil, c.dead
	}
	c.nextID++
	id := c.nextID
	ch := make(chan cdpMessage, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	raw, err := json.Marshal(cdpMessage{ID: id, Method: method, Params: params, SessionID: session})
	if err != nil {
		return nil, err
	}
	if _, err := c.in.Write(append(raw, 0)); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: chromium went away", method)
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		return m.Result, nil
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s: no answer from chromium in 30s", method)
	}
}

// do is call that fails the test on error, decoding the result into out.
func (c *chromium) do(session, method string, params, out any) {
	c.t.Helper()
	raw, err := c.call(session, method, params)
	require.NoError(c.t, err)
	if out != nil {
		require.NoError(c.t, json.Unmarshal(raw, out), "%s: %s", method, raw)
	}
}

func (c *chromium) setHeader(name, value string) {
	c.t.Helper()
	c.do(c.session, "Network.setExtraHTTPHeaders", map[string]any{"headers": map[string]string{name: value}}, nil)
}

// navigate opens url in the page and returns Chromium's error, "" when the
// navigation committed (the page may still be loading).
func (c *chromium) navigate(url string) string {
	c.t.Helper()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	c.do(c.session, "Page.navigate", map[string]any{"url": url}, &res)
	return res.ErrorText
}

// eval runs a JavaScript expression in the page, awaiting a promise, and
// returns its value as a string.
func (c *chromium) eval(expr string) string {
	c.t.Helper()
	s, err := c.tryEval(expr)
	require.NoError(c.t, err)
	return s
}

func (c *chromium) tryEval(expr string) (string, error) {
	raw, err := c.call(c.session, "Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true,
	})
	if err != nil {
		return "", err
	}
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return "", err
	}
	if res.ExceptionDetails != nil {
		return "", errors.New("javascript: " + res.ExceptionDetails.Text)
	}
	switch v := res.Result.Value.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case nil:
		return "", nil
	default:
		return fmt.Sprint(v), nil
	}
}

// waitFor polls a JavaScript condition until it holds; the app renders
// asynchronously after its API calls return.
func (c *chromium) waitFor(cond string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := c.tryEval(cond); err == nil && v == "true" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	last, _ := c.tryEval(`document.body ? document.body.innerText : ""`)
	c.t.Fatalf("waiting for %s; the page shows:\n%s", cond, tail(last, 2000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
