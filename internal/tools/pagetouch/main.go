// Command pagetouch measures how long a process stalls when it first
// touches fresh memory: it maps SIZE MiB of anonymous memory, writes one
// byte per 4 KiB page and reports the longest gap between two page touches.
// On this project's Firecracker VMs a single page fault took up to ~35 ms,
// which is why TestScriptCostBounded logs Redis's O(1)-command stalls beside
// its script timings (a Redis whose memory grows meets the same stalls).
//
//	go run ./internal/tools/pagetouch [-mib 3072] [-huge]
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	mib := flag.Int("mib", 3072, "MiB of fresh memory to touch")
	huge := flag.Bool("huge", false, "madvise(MADV_HUGEPAGE) first")
	flag.Parse()
	size := *mib << 20
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmap:", err)
		os.Exit(1)
	}
	if *huge {
		if err := syscall.Madvise(b, 14 /* MADV_HUGEPAGE */); err != nil {
			fmt.Fprintln(os.Stderr, "madvise:", err)
			os.Exit(1)
		}
	}
	var worst time.Duration
	var over5, over10 int
	start := time.Now()
	last := start
	for i := 0; i < size; i += 4096 {
		b[i] = 1
		now := time.Now()
		d := now.Sub(last)
		worst = max(worst, d)
		switch {
		case d > 10*time.Millisecond:
			over10++
		case d > 5*time.Millisecond:
			over5++
		}
		last = now
	}
	fmt.Printf("touched %d MiB in %v (%v per 4 KiB page); longest single page %v; pages over 10 ms: %d, 5-10 ms: %d\n",
		*mib, time.Since(start).Round(time.Millisecond), time.Since(start)/time.Duration(size/4096), worst, over10, over5)
}
