package redistest

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of one server, for partition
// tests. Stall holds the bytes of every connection in both directions (new
// connections are accepted and stalled too) and Heal delivers them in order,
// as a network partition that heals would; StallReplies holds only what the
// server sends (requests arrive and are executed, their replies do not come
// back); Cut resets every open connection, as a middlebox or a dead link
// would. A goroutine blocked in a socket read
// behind a stalled proxy stays blocked: that is the point.
type Proxy struct {
	Addr   string // where clients connect
	target string
	ln     net.Listener

	mu         sync.Mutex
	cond       *sync.Cond
	stallReqs  bool // hold client -> server bytes
	stallReply bool // hold server -> client bytes
	closed     bool
	conns      map[net.Conn]struct{}
	wg         sync.WaitGroup
}

// StartProxy starts a proxy to target on a free loopback port.
func StartProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// NewProxy starts a proxy to target for one test and closes it at the end.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := StartProxy(target)
	if err != nil {
		t.Fatalf("redistest: proxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			c.Close()
			s.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(s, c, true)
		go p.pipe(c, s, false)
	}
}

func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst, holding each chunk while its direction is stalled
// (toServer: the requests).
func (p *Proxy) pipe(dst, src net.Conn, toServer bool) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
		src.Close()
		dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for (toServer && p.stallReqs || !toServer && p.stallReply) && !p.closed {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
	}
}

// Stall holds all traffic until Heal.
func (p *Proxy) Stall() {
	p.mu.Lock()
	p.stallReqs, p.stallReply = true, true
	p.mu.Unlock()
}

// StallReplies holds the server's replies until Heal; requests go through.
func (p *Proxy) StallReplies() {
	p.mu.Lock()
	p.stallReply = true
	p.mu.Unlock()
}

// Heal delivers what was held, in order, and lets traffic flow again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.stallReqs, p.stallReply = false, false
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Cut resets every open connection (RST, not FIN); new connections work.
// Bytes held by a stall are dropped with them.
func (p *Proxy) Cut() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
}

// Retarget sends new connections to addr and cuts the open ones: as a
// server's address taken over by another server (a restarted node, a DNS
// or VIP switch) looks to a client.
func (p *Proxy) Retarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
	p.Cut()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
