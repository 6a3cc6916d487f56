package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// service is the real binary (bin/boohpay serve) run as a child process,
// configured only through its environment, as in production. Running it
// apart from the bench keeps its CPU, memory and allocations its own.
type service struct {
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:PORT
	logPath string
	exited  chan struct{}
	waitErr error
}

// serviceEnv is the environment every run of the binary gets on top of the bench's own.
func serviceEnv(dbURL string, extra ...string) []string {
	return append(os.Environ(), append([]string{
		"DATABASE_URL=" + dbURL,
		"WEBHOOK_ALLOW_PRIVATE_NETWORKS=true", // the receiver is on 127.0.0.1
		"MIGRATE_ON_START=false",              // the template is migrated already
		"SHUTDOWN_TIMEOUT=3s",                 // do not wait out a hanging merchant at the end
		"ADMIN_TOKEN=", "METRICS_TOKEN=",
		"RATE_LIMIT=0", // the bench drives one key far past a merchant's allowance
	}, extra...)...)
}

// listeningRE finds the address serve logs once it has bound HTTP_ADDR.
var listeningRE = regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:[0-9]+)`)

// startService runs `boohpay serve` with role and waits until /readyz answers.
// The service picks its own port (HTTP_ADDR=127.0.0.1:0) and the bench reads
// it from the log: a port chosen by the bench and bound later by the service
// could be taken meanwhile by another program on this shared machine, which
// would then answer for it.
func (b *bench) startService(ctx context.Context, name, dbURL, role string, env ...string) (*service, error) {
	logPath := filepath.Join(b.logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.bin, "serve")
	cmd.Env = serviceEnv(dbURL, append([]string{"HTTP_ADDR=127.0.0.1:0", "ROLE=" + role, "LOG_FORMAT=text"}, env...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the bench dies, so does the service.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s serve: %w", b.bin, err)
	}
	s := &service{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	err = waitFor(ctx, 20*time.Second, 25*time.Millisecond, func(ctx context.Context) (bool, error) {
		select {
		case <-s.exited:
			return false, fmt.Errorf("the service exited: %v\n%s", s.waitErr, tail(logPath, 20))
		default:
		}
		if s.base == "" {
			b, _ := os.ReadFile(logPath)
			m := listeningRE.FindSubmatch(b)
			if m == nil {
				return false, nil
			}
			s.base = "http://" + string(m[1])
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/readyz", nil)
		resp, err := client.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("waiting for the service: %w", err)
	}
	return s, nil
}

func (s *service) pid() int { return s.cmd.Process.Pid }

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func (s *service) peakRSS() int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(s.pid()), "status"))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// stop reads the peak RSS, then stops the service: SIGTERM, and SIGKILL if it
// has not exited within 15 s.
func (s *service) stop() (peakRSS int64) {
	select {
	case <-s.exited:
		return 0
	default:
	}
	peakRSS = s.peakRSS()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	return peakRSS
}

// finish stops the service at the end of a scenario and returns its peak
// RSS. It fails if the service exited on its own before: the scenario's
// numbers would not be the service's.
func (s *service) finish() (peakRSS int64, err error) {
	select {
	case <-s.exited:
		return 0, fmt.Errorf("the service exited during the scenario: %v\n%s", s.waitErr, tail(s.logPath, 20))
	default:
	}
	return s.stop(), nil
}

// scrape reads the unlabelled samples of GET /metrics (go_memstats_*,
// process_*), by name.
func (s *service) scrape(ctx context.Context) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping /metrics: HTTP %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || strings.ContainsRune(line, '{') {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

// merchant is what `boohpay merchant create` prints.
type merchant struct {
	ID            uuid.UUID `json:"id"`
	APIKey        string    `json:"api_key"`
	WebhookSecret string    `json:"webhook_secret"`
}

// createMerchant runs `boohpay merchant create`, as an operator would.
func (b *bench) createMerchant(ctx context.Context, dbURL, name, webhookURL string) (*merchant, error) {
	cmd := exec.CommandContext(ctx, b.bin, "merchant", "create", "--name", name, "--webhook-url", webhookURL)
	cmd.Env = serviceEnv(dbURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("boohpay merchant create: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var m merchant
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("reading boohpay merchant create's output: %w", err)
	}
	if m.APIKey == "" || m.WebhookSecret == "" {
		return nil, errors.New("boohpay merchant create printed no api_key or webhook_secret")
	}
	return &m, nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 64<<10 {
		_, _ = f.Seek(-64<<10, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
