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
	"github.com/boohpay/boohpay/netguard"
)

// SSRF at delivery time: the rule itself (netguard) is tested in its
// package; these check that the worker dials through it (a name re-pointed at
// a private address after it was set is refused) and never follows redirects.

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
// resolve when the URL was set, so netguard.CheckURL let it through) is refused by
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
				require.NoError(t, netguard.CheckURL(context.Background(), url, false),
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
// real one (newDeliveryWorker, newHTTPClient, netguard.Dialer) except that its
// dialer asks resolver for names.
func startWithResolver(t *testing.T, b *testBundle, cfg Config, resolver *net.Resolver) {
	t.Helper()
	cfg = cfg.withDefaults()
	w := newDeliveryWorker(b.store, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	d := netguard.Dialer(cfg.WebhookTimeout, cfg.AllowPrivateNetworks)
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
