package fleet

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// monitor records, from MONITOR on each data node, every command that names
// a lease key, with the time this process read it (the history's clock): on
// an overlap the test prints what each server did with that key, which tells
// a server that lost a write from a client that trusted one it never made.
// It reconnects after a kill or restart.
type monitor struct {
	h    *foHistory
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	lines []monLine
}

type monLine struct {
	at   int64
	node string
	text string
}

func newMonitor(h *foHistory, addrs ...string) *monitor {
	m := &monitor{h: h, stop: make(chan struct{})}
	for _, a := range addrs {
		m.wg.Go(func() { m.watch(a) })
	}
	return m
}

func (m *monitor) watch(addr string) {
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		m.session(addr)
		select {
		case <-m.stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (m *monitor) session(addr string) {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return
	}
	defer conn.Close()
	go func() { <-m.stop; conn.Close() }()
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		return
	}
	m.add(addr, "(monitor connected)")
	r := bufio.NewReaderSize(conn, 1<<20)
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull { // a ballast SET: skip the rest of it
			for err == bufio.ErrBufferFull {
				_, err = r.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			m.add(addr, "(monitor lost: "+err.Error()+")")
			return
		}
		if s := string(line); strings.Contains(s, ":lease") || strings.Contains(s, "REPLICAOF") || strings.Contains(s, "SLAVEOF") {
			m.add(addr, strings.TrimSpace(s))
		}
	}
}

func (m *monitor) add(node, text string) {
	at := m.h.now()
	m.mu.Lock()
	m.lines = append(m.lines, monLine{at, node, text})
	m.mu.Unlock()
}

func (m *monitor) close() {
	close(m.stop)
	m.wg.Wait()
}

// around returns the lines that name key (or a role change) between from and
// to, one per line.
func (m *monitor) around(key string, from, to int64) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, l := range m.lines {
		if l.at < from || l.at > to {
			continue
		}
		if strings.Contains(l.text, key) || !strings.Contains(l.text, ":lease") {
			fmt.Fprintf(&b, "%v %s %s\n", time.Duration(l.at), l.node, l.text)
		}
	}
	return b.String()
}

// stampedLog keeps log lines (the leases' slog output) with the history's
// clock.
type stampedLog struct {
	h     *foHistory
	mu    sync.Mutex
	lines []monLine
}

func (l *stampedLog) Write(p []byte) (int, error) {
	at := l.h.now()
	l.mu.Lock()
	l.lines = append(l.lines, monLine{at: at, text: strings.TrimSpace(string(p))})
	l.mu.Unlock()
	return len(p), nil
}

func (l *stampedLog) around(key string, from, to int64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, x := range l.lines {
		if x.at >= from && x.at <= to && strings.Contains(x.text, key) {
			fmt.Fprintf(&b, "%v %s\n", time.Duration(x.at), x.text)
		}
	}
	return b.String()
}
