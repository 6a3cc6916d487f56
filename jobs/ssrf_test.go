package jobs

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

// SSRF (issue 8): merchant webhook URLs that are, or resolve to, loopback,
// private, link-local (cloud metadata), CGNAT, unique-local or unspecified
// addresses are refused when set (ValidateURL) and again at dial time (the
// dialer), unless WEBHOOK_ALLOW_PRIVATE_NETWORKS; redirects are never
// followed; no proxy is consulted.

// blockedHosts are URL hosts in every range the issue names, and their edges.
var blockedHosts = []string{
	"127.0.0.1", "127.255.255.254", "127.1.2.3", "[::1]",
	"10.0.0.1", "10.255.255.255",
	"172.16.0.1", "172.31.255.255",
	"192.168.0.1", "192.168.255.255",
	"169.254.169.254", "169.254.0.1", "[fe80::1]",
	"100.64.0.1", "100.127.255.255",
	"[fc00::1]", "[fdff:ffff::1]",
	"0.0.0.0", "[::]",
	"[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]", // IPv4-mapped
	"[64:ff9b::7f00:1]", // NAT64 of 127.0.0.1
	"localhost", "LOCALHOST", "api.localhost",
}

// publicHosts sit just outside those ranges: they must pass.
var publicHosts = []string{
	"93.184.216.34", "11.0.0.1", "9.255.255.255", "172.15.255.255", "172.32.0.1", "192.167.255.255", "192.169.0.1",
	"100.63.255.255", "100.128.0.1", "169.253.255.255", "169.255.0.1", "126.255.255.255", "128.0.0.1",
	"[2606:4700:4700::1111]", "[fbff:ffff::1]", "[fe00::1]",
}

func TestValidateURLRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, host := range blockedHosts {
		for _, url := range []string{"http://" + host + "/hooks", "https://" + host + ":8443/hooks?x=1"} {
			require.ErrorIs(t, ValidateURL(ctx, url, false), ErrBlockedAddress, url)
			require.NoError(t, ValidateURL(ctx, url, true), "%s is allowed with WEBHOOK_ALLOW_PRIVATE_NETWORKS", url)
		}
	}
	for _, host := range publicHosts {
		require.NoError(t, ValidateURL(ctx, "https://"+host+"/hooks", false), host)
	}
	for _, url := range []string{"ftp://merchant.example.com/", "file:///etc/passwd", "gopher://merchant.example.com/",
		"http://user:pass@merchant.example.com/", "http:///nohost", "merchant.example.com/hooks"} {
		require.Error(t, ValidateURL(ctx, url, true), url)
	}
}

// TestDialerRefusesPrivateAddresses dials each blocked address directly: the
// dialer refuses before connecting (a listener on 127.0.0.1 sees nothing),
// and lets the same dial through when private networks are allowed.
func TestDialerRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conn.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	blocked := newDialer(5*time.Second, false)
	for _, host := range blockedHosts {
		if !strings.ContainsAny(host, "0123456789") || strings.Contains(host, "localhost") {
			continue // names: TestDeliveryRefusesNamesResolvingToPrivateAddresses
		}
		addr := net.JoinHostPort(strings.Trim(host, "[]"), fmt.Sprint(port))
		_, err := blocked.DialContext(context.Background(), "tcp", addr)
		require.ErrorIs(t, err, ErrBlockedAddress, addr)
	}
	require.Zero(t, accepted.Load(), "a blocked dial reached the listener")

	conn, err := newDialer(5*time.Second, true).DialContext(context.Background(), "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err, "allowed when private networks are")
	conn.Close()
	require.Eventually(t, func() bool { return accepted.Load() == 1 }, 10*time.Second, 5*time.Millisecond)

	// The delivery client consults no proxy: HTTP_PROXY would dial past the check.
	tr := newHTTPClient(Config{WebhookTimeout: time.Second}.withDefaults()).Transport.(*http.Transport)
	require.Nil(t, tr.Proxy)
}

// fakeDNS answers A and AAAA queries from a table, over UDP: a merchant's
// name re-pointed at a private address between the URL check and the
// attempt (DNS rebinding), without touching the machine's resolver.
type fakeDNS struct {
	conn    net.PacketConn
	records map[string][]netip.Addr // lower-case name without the final dot
	queries atomic.Int32
}

func newFakeDNS(t *testing.T, records map[string][]netip.Addr) *fakeDNS {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &fakeDNS{conn: conn, records: records}
	t.Cleanup(func() { conn.Close() })
	go d.serve()
	return d
}

// resolver is a net.Resolver that asks only this server.
func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

func (d *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			_, _ = d.conn.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query (RFC 1035 §4): the question
// echoed, then one answer per matching record, names compressed to the
// question's (0xC00C).
func (d *fakeDNS) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	var labels []string
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	question := q[12 : i+5]
	qtype := binary.BigEndian.Uint16(q[i+1:])
	d.queries.Add(1)
	addrs, known := d.records[strings.ToLower(strings.Join(labels, "."))]
	var answers [][]byte
	for _, a := range addrs {
		typ, data := uint16(1), a.AsSlice() // A
		if a.Is6() && !a.Is4In6() {
			typ = 28 // AAAA
		}
		if typ != qtype {
			continue
		}
		rr := []byte{0xC0, 0x0C, byte(typ >> 8), byte(typ), 0, 1, 0, 0, 0, 0, 0, byte(len(data))}
		answers = append(answers, append(rr, data...))
	}
	flags := uint16(0x8180) // response, recursion desired and available, no error
	if !known {
		flags |= 3 // NXDOMAIN
	}
	resp := make([]byte, 12, 512)
	copy(resp, q[:2])
	binary.BigEndian.PutUint16(resp[2:], flags)
	binary.BigEndian.PutUint16(resp[4:], 1)
	binary.BigEndian.PutUint16(resp[6:], uint16(len(answers)))
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, a...)
	}
	return resp
}

// TestDeliveryRefusesNamesResolvingToPrivateAddresses: a merchant's name
// that resolves to a private address only when the attempt dials (it did not
// resolve when the URL was set, so ValidateURL let it through) is refused by
// the worker's dialer: the attempt fails as blocked and the endpoint behind
// the address never sees a connection. The same names, with private networks
// allowed, do reach it: the fake DNS really points there.
func TestDeliveryRefusesNamesResolvingToPrivateAddresses(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	port := rc.Listener.Addr().(*net.TCPAddr).Port
	loopback := netip.MustParseAddr("127.0.0.1")
	dns := newFakeDNS(t, map[string][]netip.Addr{
		"rebind.merchant.test":   {loopback},
		"v6.merchant.test":       {netip.MustParseAddr("::1")},
		"metadata.merchant.test": {netip.MustParseAddr("169.254.169.254")},
		"private.merchant.test":  {netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("fd00::1")},
		"mixed.merchant.test":    {netip.MustParseAddr("192.168.1.10"), loopback},
	})
	names := []string{"rebind.merchant.test", "v6.merchant.test", "metadata.merchant.test", "private.merchant.test", "mixed.merchant.test"}

	for _, allow := range []bool{false, true} {
		b := setup(t)
		var ids []uuid.UUID
		for _, name := range names {
			url := fmt.Sprintf("http://%s:%d/hooks", name, port)
			if !allow {
				require.NoError(t, ValidateURL(context.Background(), url, false),
					"the machine's DNS does not know %s: the set-time check cannot see it", name)
			}
			m, _ := b.merchant("")
			_, err := b.pool.Exec(context.Background(), `UPDATE merchants SET webhook_url = $2, webhook_secret = 'secret-key' WHERE id = $1`, m.ID, url)
			require.NoError(t, err)
			ids = append(ids, b.emit(m))
		}
		cfg := testConfig()
		cfg.AllowPrivateNetworks = allow
		cfg.WebhookMaxRetries = -1
		cfg.WebhookTimeout = 3 * time.Second
		startWithResolver(t, b, cfg, dns.resolver())

		for i, id := range ids {
			if !allow {
				row := b.waitStatus(id, db.DeliveryFailed, 30*time.Second)
				require.Contains(t, *row.ErrorMessage, "blocked: ", names[i])
				continue
			}
			if names[i] == "rebind.merchant.test" || names[i] == "mixed.merchant.test" {
				b.waitStatus(id, db.DeliverySucceeded, 30*time.Second) // loopback: the receiver
			}
		}
		if !allow {
			require.Empty(t, rc.got(), "a refused name reached the endpoint")
		} else {
			require.Len(t, rc.got(), 2, "the names that point at the receiver reach it when allowed")
		}
	}
	require.Positive(t, dns.queries.Load())
}

// startWithResolver starts a River client whose delivery worker is the
// real one (newDeliveryWorker, newHTTPClient, newDialer) except that its
// dialer asks resolver for names.
func startWithResolver(t *testing.T, b *testBundle, cfg Config, resolver *net.Resolver) {
	t.Helper()
	cfg = cfg.withDefaults()
	w := newDeliveryWorker(b.store, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	d := newDialer(cfg.WebhookTimeout, cfg.AllowPrivateNetworks)
	d.Resolver = resolver
	w.client.Transport.(*http.Transport).DialContext = d.DialContext
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		Queues:            map[string]river.QueueConfig{db.DeliveryQueue: {MaxWorkers: 10}},
		Workers:           workers,
		FetchPollInterval: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.StopAndCancel(ctx)
	})
}

// TestDeliveryNeverFollowsRedirects: every redirect status, towards another
// endpoint, is a failed attempt (reason redirect) and the target is never
// contacted; allowed private networks or not, nothing is followed.
func TestDeliveryNeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	target := newReceiver(t, nil)
	codes := []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect}
	ids := map[int]uuid.UUID{}
	for _, code := range codes {
		from := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/stolen", code)
		})
		m, _ := b.merchant(from.URL)
		ids[code] = b.emit(m)
	}
	cfg := testConfig()
	cfg.WebhookMaxRetries = -1
	attempts := &attemptLog{}
	b.startLogged(cfg, attempts)
	for _, code := range codes {
		row := b.waitStatus(ids[code], db.DeliveryFailed, 30*time.Second)
		require.Equal(t, code, *row.HTTPStatusCode)
		require.Contains(t, *row.ErrorMessage, "redirects are not followed")
	}
	require.Empty(t, target.got(), "a redirect was followed")
	for _, o := range attempts.outcomes() {
		require.Equal(t, outcomeFailed+"/"+reasonRedirect, o)
	}
}
