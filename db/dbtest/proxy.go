package dbtest

import (
	"bytes"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP fault proxy between the code under test and Postgres, for
// the faults a real network and a sick server produce: a frozen database
// (connections open, nothing answered), connections cut mid-statement, and
// an answer lost after the server committed it.
type Proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu     sync.Mutex
	frozen chan struct{} // closed while traffic flows; open while frozen
	conns  map[*proxyConn]struct{}
	// loseAnswer, when set, is looked for in what the server sends; see
	// LoseAnswerContaining.
	loseAnswer []byte
	lost       chan struct{}
}

type proxyConn struct {
	client, server net.Conn
	lost           atomic.Bool // its answer was lost: the server side stays open
}

// NewProxy listens on a free local port and forwards every connection to
// the host and port of databaseURL. It closes when t ends.
func NewProxy(t testing.TB, databaseURL string) *Proxy {
	t.Helper()
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatalf("parsing %q: %v", databaseURL, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	flowing := make(chan struct{})
	close(flowing)
	p := &Proxy{t: t, ln: ln, target: u.Host, frozen: flowing, conns: map[*proxyConn]struct{}{}}
	t.Cleanup(p.Close)
	go p.accept()
	return p
}

// URL returns databaseURL pointed at the proxy.
func (p *Proxy) URL(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		p.t.Fatalf("parsing %q: %v", databaseURL, err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// Freeze stops forwarding in both directions, on open connections and on
// new ones (which are accepted, then hear nothing): a database whose process
// is stopped (SIGSTOP) or whose network drops packets.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.frozen:
		p.frozen = make(chan struct{})
	default:
	}
}

// Thaw forwards again what Freeze held, and what follows.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.frozen:
	default:
		close(p.frozen)
	}
}

// CutAll closes every open connection, both sides, at once.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.client.Close()
		c.server.Close()
		delete(p.conns, c)
	}
}

// LoseAnswerContaining arms the proxy: the first answer from the server
// that contains pattern is not forwarded, and its connection's client side
// is closed at once while the server side stays open and read, so the
// server finishes (and commits) what it was doing without noticing. The
// client sees its connection cut mid-answer. The returned channel closes
// when it happened.
func (p *Proxy) LoseAnswerContaining(pattern []byte) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loseAnswer = pattern
	p.lost = make(chan struct{})
	return p.lost
}

// Close stops the proxy and cuts every connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Thaw()
	p.CutAll()
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxyConn{client: client, server: server}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.pump(c, client, server, false)
		go p.pump(c, server, client, true)
	}
}

// pump copies from src to dst, holding each chunk while the proxy is frozen.
func (p *Proxy) pump(c *proxyConn, src, dst net.Conn, fromServer bool) {
	defer func() {
		if fromServer || !c.lost.Load() {
			dst.Close()
		}
		src.Close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	var tail []byte // the end of the previous chunk, so a pattern split across two is found
	losing := false
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if fromServer && !losing && p.loses(append(tail, chunk...)) {
				losing = true
				c.lost.Store(true)
				c.client.Close()
			}
			if losing {
				continue // drain the server, forward nothing
			}
			if fromServer {
				tail = append(tail[:0], chunk[max(0, n-256):]...)
			}
			p.mu.Lock()
			gate := p.frozen
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(chunk); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// loses reports whether data holds the armed pattern, disarming it.
func (p *Proxy) loses(data []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loseAnswer == nil || !bytes.Contains(data, p.loseAnswer) {
		return false
	}
	p.loseAnswer = nil
	close(p.lost)
	return true
}
