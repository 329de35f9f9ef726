package fleet

import (
	"fmt"
	"testing"
)

func members(n, capacity int) []Member {
	out := make([]Member, n)
	for i := range out {
		out[i] = Member{ID: fmt.Sprintf("worker-%d", i), Capacity: capacity}
	}
	return out
}

func loads(plan map[string]string) map[string]int {
	l := map[string]int{}
	for _, w := range plan {
		l[w]++
	}
	return l
}

func sessionNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("acct-%04d", i)
	}
	return out
}

// TestAssignBalancedAndStable: 1,000 sessions over 8 workers land within
// ±10% of 125 each; a 9th worker moves at most 1.3 × 1000/9 sessions;
// losing a worker moves only its sessions; capacity is never exceeded and
// nobody waits while there is room.
func TestAssignBalancedAndStable(t *testing.T) {
	sessions := sessionNames(1000)
	eight := members(8, 200)
	plan := Assign(sessions, eight)
	if len(plan) != 1000 {
		t.Fatalf("%d of 1000 sessions assigned", len(plan))
	}
	for w, n := range loads(plan) {
		if n < 113 || n > 137 { // 125 ± 10%
			t.Errorf("%s owns %d; want 125 ± 10%%", w, n)
		}
	}
	nine := append(members(8, 200), Member{ID: "worker-new", Capacity: 200})
	plan9 := Assign(sessions, nine)
	moved := 0
	for s, w := range plan9 {
		if plan[s] != w {
			moved++
		}
	}
	t.Logf("8 workers: loads %v; a 9th joins: %d sessions move (limit %d), its share %d", loads(plan), moved, 1300/9, loads(plan9)["worker-new"])
	if moved > 1300/9 {
		t.Errorf("%d sessions moved when a 9th worker joined; want ≤ %d", moved, 1300/9)
	}
	seven := eight[1:]
	plan7 := Assign(sessions, seven)
	others := 0
	for s, w := range plan {
		if w != eight[0].ID && plan7[s] != w {
			others++
		}
	}
	t.Logf("a worker leaves: its %d sessions move, and %d others; loads %v", loads(plan)[eight[0].ID], others, loads(plan7))
	if others > 100 {
		t.Errorf("%d sessions of staying workers moved when one left; want ≤ 100", others)
	}
	for w, n := range loads(plan7) {
		if n < 1000/7*85/100 || n > 1000/7*115/100 {
			t.Errorf("after a worker left, %s owns %d; want 143 ± 15%%", w, n)
		}
	}
	// Tight capacity: nobody exceeds it, and nothing waits while there is room.
	tight := []Member{{"a", 300}, {"b", 300}, {"c", 500}}
	planT := Assign(sessions, tight)
	l := loads(planT)
	if len(planT) != 1000 || l["a"] > 300 || l["b"] > 300 || l["c"] > 500 {
		t.Errorf("tight capacities: %d assigned, loads %v", len(planT), l)
	}
	// Weighted: a worker with twice the capacity gets about twice the share.
	planW := Assign(sessions, []Member{{"small", 1000}, {"big", 2000}})
	if lw := loads(planW); lw["big"] < 600 || lw["big"] > 730 {
		t.Errorf("weighted 1:2: loads %v; want big ≈ 667", lw)
	}
	// Same view, same plan.
	again := Assign(append([]string(nil), sessions...), []Member{eight[3], eight[1], eight[0], eight[2], eight[7], eight[5], eight[6], eight[4]})
	for s, w := range plan {
		if again[s] != w {
			t.Fatal("the plan depends on the order of the view")
		}
	}
}
