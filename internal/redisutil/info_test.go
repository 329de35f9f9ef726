package redisutil

import "testing"

func TestInfoField(t *testing.T) {
	t.Parallel()
	reply := "# Memory\r\nused_memory:1024\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n"
	for _, tc := range []struct{ field, want string }{
		{"used_memory", "1024"},
		{"maxmemory", "0"}, // not confused with maxmemory_policy
		{"maxmemory_policy", "noeviction"},
		{"used", ""},
		{"absent", ""},
	} {
		if got := InfoField(reply, tc.field); got != tc.want {
			t.Errorf("InfoField(%q) = %q; want %q", tc.field, got, tc.want)
		}
	}
}
