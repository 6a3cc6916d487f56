// Package netguard owns the one rule for where a merchant's webhook URL may
// point. The API and the CLI apply it when a URL is set (CheckURL); the
// delivery worker applies it again to every address it dials (Dialer), since
// DNS can change in between. Both judge the canonical address: an IPv6 zone
// is dropped, IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4,
// Teredo) is unwrapped and judged as IPv4, and hosts spelled as numbers that
// parsers disagree on (127.1, 2130706433, 0x7f000001, 017700000001) are
// refused outright.
//
// The ranges are code.dny.dev/ssrf's, generated from IANA's IPv4 and IPv6
// special-purpose address registries: every IPv4 special-purpose prefix
// (loopback, RFC 1918, link-local and so cloud metadata, CGNAT, multicast,
// reserved, documentation, benchmarking) and every IPv6 address outside
// global unicast 2000::/3 or in its special-purpose prefixes.
package netguard

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

	"code.dny.dev/ssrf"
)

// ErrBlocked is returned for a destination that is not a public address.
var ErrBlocked = errors.New("destination address is private, loopback, link-local or otherwise not public")

// guardian judges addresses against the IANA-derived ranges. Ports and
// networks are not its business here: merchants listen where they like.
var guardian = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAnyNetwork(), ssrf.WithDeniedV4Prefixes(
	// Azure's wireserver and instance metadata host: a public-looking
	// address that only the cloud's own hosts answer on.
	netip.MustParsePrefix("168.63.129.16/32"),
))

// maxURLLen bounds a webhook URL; real ones are far shorter.
const maxURLLen = 2048

// CheckAddr returns an error wrapping ErrBlocked when addr is not a public
// address, judged without its zone and, for IPv6 that carries an IPv4
// address, also as that IPv4 address.
func CheckAddr(addr netip.Addr) error {
	addr = addr.WithZone("") // a zone names an interface, not a destination
	if err := guardian.SafeAddr(addr.Unmap()); err != nil {
		return fmt.Errorf("%w: %s", ErrBlocked, addr)
	}
	if v4, ok := embeddedIPv4(addr); ok {
		if err := guardian.SafeAddr(v4); err != nil {
			return fmt.Errorf("%w: %s carries %s", ErrBlocked, addr, v4)
		}
	}
	return nil
}

// embeddedIPv4 returns the IPv4 address an IPv6 address carries in one of
// the standard embeddings, which a translator or relay would reach.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	if a.Is4In6() {
		return a.Unmap(), true
	}
	b := a.As16()
	last := netip.AddrFrom4([4]byte(b[12:16]))
	switch {
	case [12]byte(b[:12]) == [12]byte{}: // IPv4-compatible ::a.b.c.d (RFC 4291, deprecated)
		return last, true
	case nat64.Contains(a), nat64Local.Contains(a): // NAT64 (RFC 6052, RFC 8215)
		return last, true
	case sixToFour.Contains(a): // 6to4 2002:AABB:CCDD::/48 (RFC 3056)
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case teredo.Contains(a): // Teredo: the client's address, inverted (RFC 4380)
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	}
	return netip.Addr{}, false
}

var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour  = netip.MustParsePrefix("2002::/16")
	teredo     = netip.MustParsePrefix("2001::/32")
)

// CheckURL checks a merchant webhook URL when it is set: http or https, a
// host, no credentials, at most 2048 bytes, no IPv6 zone, no numeric host
// spelling other than a dotted quad and, unless allowPrivate, a host that
// neither is nor resolves to a blocked address (ErrBlocked).
//
// A name that does not resolve is accepted: endpoints are often configured
// before their DNS exists, and the dialer judges every address the name
// resolves to at each attempt, so nothing private is reached through it.
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	if len(raw) > maxURLLen {
		return fmt.Errorf("URL is longer than %d characters", maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("URL scheme must be http or https")
	}
	if u.User != nil {
		return errors.New("URL must not carry credentials")
	}
	host := u.Hostname()
	if host == "" {
		return errors.New("URL has no host")
	}
	addr, isAddr, err := hostAddr(host)
	if err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}
	if isAddr {
		return CheckAddr(addr)
	}
	if name := strings.ToLower(strings.TrimSuffix(host, ".")); name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return fmt.Errorf("%w: %s", ErrBlocked, host) // RFC 6761: always loopback
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil // see above: the dialer decides
	}
	for _, a := range addrs {
		if err := CheckAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// hostAddr reads a URL host as an IP address when it is one. It refuses an
// IPv6 zone, and a host that URL parsers read as an IPv4 number (its last
// label is decimal, or hex with 0x) unless it is a plain dotted quad:
// "127.1", "2130706433", "0x7f000001" or "017700000001" mean 127.0.0.1 to a
// browser or libc and a name to others.
func hostAddr(host string) (netip.Addr, bool, error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" {
			return netip.Addr{}, false, errors.New("URL host must not carry an IPv6 zone")
		}
		return addr, true, nil
	}
	if strings.Contains(host, ":") || strings.Contains(host, "%") {
		return netip.Addr{}, false, errors.New("URL host is not a valid IP address or name")
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	if numeric(labels[len(labels)-1]) {
		return netip.Addr{}, false, errors.New("URL host is a numeric address spelling: write an IPv4 address as four decimal numbers (a.b.c.d)")
	}
	return netip.Addr{}, false, nil
}

// numeric reports whether a host label is a number as the WHATWG URL
// standard's IPv4 parser reads one: decimal digits, or 0x and hex digits.
func numeric(label string) bool {
	if rest, ok := strings.CutPrefix(strings.ToLower(label), "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return label != "" && strings.Trim(label, "0123456789") == ""
}

// Dialer returns a dialer that refuses blocked addresses at connect time,
// after DNS resolution, unless allowPrivate: a name re-pointed at 127.0.0.1
// or the metadata service is still refused.
func Dialer(timeout time.Duration, allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if allowPrivate {
		return d
	}
	d.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unreadable dial address %q", ErrBlocked, address)
		}
		return CheckAddr(ap.Addr())
	}
	return d
}
