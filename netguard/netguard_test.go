package netguard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// blockedAddrs are addresses in every range the policy refuses, in every
// spelling an IP literal can take: zones, IPv4 inside IPv6 (mapped,
// compatible, NAT64 both prefixes, 6to4, Teredo), and the ranges' edges.
var blockedAddrs = []string{
	"127.0.0.1", "127.255.255.254", "127.1.2.3", "::1", "::1%lo", "::1%1", "::", "::%lo",
	"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.0.1", "192.168.255.255",
	"169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%eth0", "fd00:ec2::254", "fd00:ec2::254%eth0",
	"100.64.0.1", "100.127.255.255", "100.100.100.200", "168.63.129.16",
	"fc00::1", "fdff:ffff::1", "0.0.0.0", "224.0.0.1", "ff02::1", "255.255.255.255",
	"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:7f00:1", // IPv4-mapped
	"::127.0.0.1", "::7f00:1", "::10.0.0.1", // IPv4-compatible
	"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::7f00:1", "64:ff9b::8.8.8.8", // NAT64
	"2002:7f00:1::1", "2002:a9fe:a9fe::1", "2002:808:808::1", // 6to4
	"2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1
}

// publicAddrs sit just outside those ranges: they must pass.
var publicAddrs = []string{
	"93.184.216.34", "11.0.0.1", "9.255.255.255", "172.15.255.255", "172.32.0.1", "192.167.255.255", "192.169.0.1",
	"100.63.255.255", "100.128.0.1", "169.253.255.255", "169.255.0.1", "126.255.255.255", "128.0.0.1", "8.8.8.8",
	"2606:4700:4700::1111", "2a00:1450:4007:80a::200e",
}

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	for _, s := range blockedAddrs {
		require.ErrorIs(t, CheckAddr(netip.MustParseAddr(s)), ErrBlocked, s)
	}
	for _, s := range publicAddrs {
		require.NoError(t, CheckAddr(netip.MustParseAddr(s)), s)
	}
}

// urlHost writes an address as a URL host: IPv6 in brackets, its zone's %
// escaped as %25.
func urlHost(s string) string {
	if !strings.Contains(s, ":") {
		return s
	}
	return "[" + strings.ReplaceAll(s, "%", "%25") + "]"
}

func TestCheckURLRefusesEverySpelling(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, s := range blockedAddrs {
		for _, u := range []string{"http://" + urlHost(s) + "/x", "https://" + urlHost(s) + ":8443/hooks?x=1"} {
			err := CheckURL(ctx, u, false)
			require.Error(t, err, u)
			if !strings.Contains(s, "%") {
				require.ErrorIs(t, err, ErrBlocked, u)
				require.NoError(t, CheckURL(ctx, u, true), "%s is allowed with WEBHOOK_ALLOW_PRIVATE_NETWORKS", u)
			}
		}
	}
	// Zones and numeric spellings are refused even where private networks
	// are allowed: they mean different things to different parsers.
	for _, host := range []string{"[::1%25lo]", "[::%25lo]", "[::1%251]", "[fe80::1%25eth0]", "[fd00:ec2::254%25eth0]", "[2606:4700::1%25eth0]",
		"127.1", "127.0.1", "2130706433", "0x7f000001", "0X7F000001", "017700000001", "0177.0.0.1", "127.000.000.001",
		"0x7f.0.0.1", "127.0.0.1.", "1.2.3.4.5", "example.com.0x10", "example.123"} {
		for _, allow := range []bool{false, true} {
			u := "http://" + host + ":8080/x"
			require.Error(t, CheckURL(ctx, u, allow), "%s (allow private %v)", u, allow)
		}
	}
	for _, host := range []string{"localhost", "localhost.", "LOCALHOST", "LocalHost.", "api.localhost", "api.localhost."} {
		u := "http://" + host + "/x"
		require.ErrorIs(t, CheckURL(ctx, u, false), ErrBlocked, u)
		require.NoError(t, CheckURL(ctx, u, true), u)
	}
	for _, s := range publicAddrs {
		require.NoError(t, CheckURL(ctx, "https://"+urlHost(s)+"/hooks", false), s)
	}
	// A name that does not resolve is decided at dial time (see CheckURL).
	require.NoError(t, CheckURL(ctx, "https://no-such-host.invalid/hooks", false))
	for _, u := range []string{"ftp://merchant.example.com/", "file:///etc/passwd", "gopher://merchant.example.com/",
		"http://user:pass@merchant.example.com/", "http:///nohost", "merchant.example.com/hooks", "javascript:alert(1)",
		"https://merchant.example.com/" + strings.Repeat("x", 3000)} {
		require.Error(t, CheckURL(ctx, u, true), u)
	}
}

// TestDialerRefusesEverySpelling gives the dialer each blocked address as
// Go's resolver would hand it over, zones included: it refuses before
// connecting (a listener on loopback sees nothing), and lets the same dial
// through when private networks are allowed.
func TestDialerRefusesEverySpelling(t *testing.T) {
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

	d := Dialer(5*time.Second, false)
	for _, s := range blockedAddrs {
		addr := net.JoinHostPort(s, fmt.Sprint(port))
		network := "tcp4"
		if strings.Contains(s, ":") {
			network = "tcp6"
		}
		require.ErrorIs(t, d.Control(network, addr, nil), ErrBlocked, addr)
		if strings.Contains(s, "%") {
			continue // the zone's interface may not exist here; Control above is what runs
		}
		_, err := d.DialContext(context.Background(), "tcp", addr)
		require.ErrorIs(t, err, ErrBlocked, addr)
	}
	require.Zero(t, accepted.Load(), "a blocked dial reached the listener")

	conn, err := Dialer(5*time.Second, true).DialContext(context.Background(), "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err, "allowed when private networks are")
	conn.Close()
	require.Eventually(t, func() bool { return accepted.Load() == 1 }, 10*time.Second, 5*time.Millisecond)
}
