package jobs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// blockedPrefixes are the destinations a merchant URL may not reach unless
// WEBHOOK_ALLOW_PRIVATE_NETWORKS is set: loopback, private, link-local
// (including cloud metadata at 169.254.169.254), CGNAT, unspecified,
// multicast and IPv6 unique-local.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 private space
}

// ErrBlockedAddress is returned for a destination in a blocked range.
var ErrBlockedAddress = errors.New("destination address is private, loopback or link-local")

func blocked(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ValidateURL checks a merchant webhook URL when it is set: http(s), a
// host, no credentials, and, unless allowPrivate, a host that does not
// resolve to a blocked address. The dialer checks again at delivery time,
// since DNS can change in between.
func ValidateURL(ctx context.Context, raw string, allowPrivate bool) error {
	if len(raw) > 2048 {
		return errors.New("URL is longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("URL scheme must be http or https")
	}
	if u.Hostname() == "" {
		return errors.New("URL has no host")
	}
	if u.User != nil {
		return errors.New("URL must not carry credentials")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		if blocked(addr) {
			return ErrBlockedAddress
		}
		return nil
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return ErrBlockedAddress
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		// A name that does not resolve yet is allowed; the dialer decides.
		return nil
	}
	for _, a := range addrs {
		if blocked(a) {
			return ErrBlockedAddress
		}
	}
	return nil
}

// newDialer returns a dialer that refuses blocked addresses after DNS
// resolution, at connect time, so a name re-pointed at 127.0.0.1 or the
// metadata service is still refused.
func newDialer(timeout time.Duration, allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if allowPrivate {
		return d
	}
	d.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("parsing dial address %q: %w", address, err)
		}
		if blocked(ap.Addr()) {
			return ErrBlockedAddress
		}
		return nil
	}
	return d
}
