package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// apiClient calls the merchant API as one merchant, over keep-alive
// connections to 127.0.0.1.
type apiClient struct {
	base, key string
	http      *http.Client
}

func newAPIClient(base, key string) *apiClient {
	return &apiClient{base: base, key: key, http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // 127.0.0.1 only, whatever the environment says
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	}}
}

// paymentBody is every bench payment: a sandbox payment, so simulate works.
const paymentBody = `{"amount":5000,"currency":"XAF","gateway":"sandbox","reference":"bench","metadata":{"order":"42"}}`

// createPayment creates a payment (one payment.pending event) and returns its id.
func (c *apiClient) createPayment(ctx context.Context) (string, error) {
	var p struct {
		ID string `json:"id"`
	}
	if err := c.post(ctx, "/v1/payments", paymentBody, http.StatusCreated, &p); err != nil {
		return "", err
	}
	return p.ID, nil
}

// simulate moves a sandbox payment to status (one more event).
func (c *apiClient) simulate(ctx context.Context, id, status string) error {
	return c.post(ctx, "/v1/payments/"+id+"/simulate", `{"status":"`+status+`"}`, http.StatusOK, nil)
}

func (c *apiClient) post(ctx context.Context, path, body string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// pace calls call(i) for i = 0 … n-1, the i-th due at start + i/rate (an
// open loop: the schedule does not wait for answers), from up to senders
// goroutines. It returns the latest any call started behind its schedule;
// if that is large the load generator, not the service, shaped the numbers.
func pace(ctx context.Context, n int, rate float64, senders int, call func(ctx context.Context, i int)) (maxLag time.Duration) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for i := range work {
				call(ctx, i)
			}
		})
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
loop:
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break loop
			}
		}
		select {
		case work <- i:
		case <-ctx.Done():
			break loop
		}
		maxLag = max(maxLag, time.Since(due))
	}
	close(work)
	wg.Wait()
	return maxLag
}
