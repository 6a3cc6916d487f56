package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/boohpay/boohpay/signing"
)

// newListenCmd is `boohpay webhooks listen`: a local endpoint that verifies
// each delivery's two signatures and prints what arrived, for merchants
// building their own receiver.
func newListenCmd() *cobra.Command {
	var addr, secret, forwardTo string
	c := &cobra.Command{
		Use:   "listen --secret SECRET [--addr ADDR] [--forward-to URL]",
		Short: "Receive webhooks locally: verify both signatures of each delivery and print it",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			if secret == "" {
				return usageErrorf(c, "webhooks listen: --secret is required")
			}
			return listen(c.Context(), addr, secret, forwardTo, c.OutOrStdout())
		},
	}
	c.Flags().StringVar(&addr, "addr", "127.0.0.1:4242", "address to listen on, host:port")
	c.Flags().StringVar(&secret, "secret", "", "the endpoint's signing secret, whsec_… (required)")
	c.Flags().StringVar(&forwardTo, "forward-to", "", "pass each verified delivery on to this URL (your app), exact body and headers, and print its answer")
	return c
}

// listen serves the receiver on addr until ctx ends.
func listen(ctx context.Context, addr, secret, forwardTo string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("webhooks listen: %w", err)
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: listenHandler(secret, forwardTo, stdout), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listenHandler verifies and prints each delivery. webhook-signature is
// the check: it lists the new and the previous secret's signatures during
// a rotation's grace period, while X-BoohPay-Signature stays on the
// previous secret until the grace ends, so a listener given the new secret
// reports the old header as on another secret without refusing the
// delivery. With forwardTo, a verified delivery is passed on and its
// answer is the app's.
func listenHandler(secret, forwardTo string, out io.Writer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		legacy := anyEqual(r.Header.Get("X-BoohPay-Signature"), signing.Legacy(secret, body))
		standard := verifyStandard(secret, r.Header, body)
		fmt.Fprintf(out, "%s %s event=%s webhook-id=%s delivery=%s x-boohpay-signature=%s webhook-signature=%s\n",
			time.Now().Format(time.RFC3339), r.Method, r.Header.Get("X-BoohPay-Event"), r.Header.Get("webhook-id"),
			r.Header.Get("X-BoohPay-Delivery"), legacyVerdict(legacy, standard), verdict(standard))
		fmt.Fprintf(out, "  %s\n", body)
		if !standard {
			http.Error(w, "signature mismatch", http.StatusUnauthorized)
			return
		}
		if forwardTo == "" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(forward(r, body, forwardTo, out))
	})
}

// forwardClient passes deliveries on; like the service, it follows no redirect.
var forwardClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// forward POSTs the delivery's exact body and headers to url, prints the
// answer, and returns the status to give BoohPay: the app's, or 502 when it
// could not be reached (so the delivery is retried, as it would be).
func forward(r *http.Request, body []byte, url string, out io.Writer) int {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(out, "  -> %s: %v\n", url, err)
		return http.StatusBadGateway
	}
	for name, values := range r.Header {
		switch http.CanonicalHeaderKey(name) {
		case "Content-Length", "Connection", "Accept-Encoding":
			continue
		}
		req.Header[name] = values
	}
	resp, err := forwardClient.Do(req)
	if err != nil {
		fmt.Fprintf(out, "  -> %s: %v\n", url, err)
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	fmt.Fprintf(out, "  -> %s: %d %s\n", url, resp.StatusCode, strings.ToValidUTF8(string(answer), "?"))
	return resp.StatusCode
}

// verifyStandard checks Standard Webhooks headers: any listed v1 signature
// may match, and the timestamp must be within 5 minutes.
func verifyStandard(secret string, h http.Header, body []byte) bool {
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		return false
	}
	return anyEqual(h.Get("webhook-signature"), signing.Standard(secret, h.Get("webhook-id"), ts, body))
}

// anyEqual reports whether any of the space-separated signatures in header
// is want. During a secret rotation's grace period both signature headers
// list one signature per secret.
func anyEqual(header, want string) bool {
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

// legacyVerdict words the X-BoohPay-Signature check: when only
// webhook-signature verifies, the delivery is genuine and the old header is
// on another secret, the previous one during a rotation's grace period.
func legacyVerdict(legacy, standard bool) string {
	if !legacy && standard {
		return "previous-secret"
	}
	return verdict(legacy)
}

func verdict(ok bool) string {
	if ok {
		return "verified"
	}
	return "INVALID"
}
