package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// receiver plays every merchant: one local HTTP server with an endpoint per
// merchant (/m/NAME) that checks both signatures of each delivery, by its
// own reading of the signature schemes (not the signing package, which it checks), records
// it, and answers as the endpoint's mode says.
type receiver struct {
	srv  *http.Server
	base string

	mu        sync.Mutex
	endpoints map[string]*endpoint
}

type mode int

const (
	answerOK   mode = iota // 200 at once
	answerFail             // 500 at once
	answerHang             // nothing for hangFor, then 200 (the service gives up first)
)

// hangFor is the noisy merchant's hang: the service's whole attempt timeout.
const hangFor = 10 * time.Second

// endpoint is one merchant's URL and what arrived there.
type endpoint struct {
	url     string
	mode    mode
	release chan struct{} // closed to end every hanging call at once
	once    sync.Once

	mu       sync.Mutex
	secret   string
	receipts []receipt
	badSigs  int
}

// receipt is one delivery attempt as the merchant saw it.
type receipt struct {
	At         time.Time // when its headers arrived
	DeliveryID string
	EventType  string
	ObjectID   string // data.id: the payment
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{base: "http://" + ln.Addr().String(), endpoints: map[string]*endpoint{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// close ends hanging calls and stops the server.
func (r *receiver) close() {
	r.mu.Lock()
	for _, e := range r.endpoints {
		e.endHangs()
	}
	r.mu.Unlock()
	_ = r.srv.Close()
}

// endpoint adds a merchant endpoint; its secret is set once the merchant exists.
func (r *receiver) endpoint(name string, m mode) *endpoint {
	e := &endpoint{url: r.base + "/m/" + name, mode: m, release: make(chan struct{})}
	r.mu.Lock()
	r.endpoints["/m/"+name] = e
	r.mu.Unlock()
	return e
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	r.mu.Lock()
	e := r.endpoints[req.URL.Path]
	r.mu.Unlock()
	if e == nil || req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		return
	}
	var event struct {
		Event string `json:"event"`
		Data  struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &event)
	e.record(receipt{At: at, DeliveryID: req.Header.Get("X-BoohPay-Delivery"), EventType: event.Event, ObjectID: event.Data.ID},
		verify(e.getSecret(), req.Header, body, at))
	switch e.mode {
	case answerFail:
		w.WriteHeader(http.StatusInternalServerError)
	case answerHang:
		t := time.NewTimer(hangFor)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
		case <-e.release:
		}
	}
}

// endHangs lets every hanging call, now and later, answer at once.
func (e *endpoint) endHangs() { e.once.Do(func() { close(e.release) }) }

func (e *endpoint) setSecret(s string) {
	e.mu.Lock()
	e.secret = s
	e.mu.Unlock()
}

func (e *endpoint) getSecret() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.secret
}

func (e *endpoint) record(r receipt, sigErr error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if sigErr != nil {
		e.badSigs++
		return
	}
	e.receipts = append(e.receipts, r)
}

// snapshot returns the verified receipts so far and the count of bad signatures.
func (e *endpoint) snapshot() ([]receipt, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]receipt(nil), e.receipts...), e.badSigs
}

func (e *endpoint) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.receipts)
}

// firstArrivals maps each object id to the first arrival of its eventType event.
func (e *endpoint) firstArrivals(eventType string) map[string]time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]time.Time, len(e.receipts))
	for _, r := range e.receipts {
		if r.EventType != eventType {
			continue
		}
		if t, ok := out[r.ObjectID]; !ok || r.At.Before(t) {
			out[r.ObjectID] = r.At
		}
	}
	return out
}

// timestampTolerance is how far webhook-timestamp may be from the receiver's clock.
const timestampTolerance = 5 * time.Minute

// verify checks a delivery's two signatures against secret: the old
// X-BoohPay-Signature (sha256=hex HMAC of the body, keyed with the secret's
// bytes) and Standard Webhooks' webhook-signature (v1,base64 HMAC of
// "id.timestamp.body", keyed with the base64-decoded part after whsec_).
// Each header may list several signatures; one match is enough.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	if secret == "" {
		return errors.New("no secret")
	}
	legacy := hmac.New(sha256.New, []byte(secret))
	legacy.Write(body)
	if !anyMatch(h.Get("X-BoohPay-Signature"), "sha256=", "sha256="+hex.EncodeToString(legacy.Sum(nil))) {
		return errors.New("X-BoohPay-Signature does not match")
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		return errors.New("missing webhook-id or webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > timestampTolerance || d < -timestampTolerance {
		return errors.New("webhook-timestamp too far from now")
	}
	key := []byte(secret)
	if rest, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(rest); err == nil {
			key = k
		}
	}
	std := hmac.New(sha256.New, key)
	std.Write([]byte(id + "." + ts + "."))
	std.Write(body)
	if !anyMatch(h.Get("webhook-signature"), "v1,", "v1,"+base64.StdEncoding.EncodeToString(std.Sum(nil))) {
		return errors.New("webhook-signature does not match")
	}
	return nil
}

// anyMatch reports whether one of the space-separated signatures in header equals want.
func anyMatch(header, prefix, want string) bool {
	for _, sig := range strings.Fields(header) {
		if strings.HasPrefix(sig, prefix) && hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}
