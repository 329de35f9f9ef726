package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run([]string{"demo"}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"PeerByUsername(\"@botfather\") -> InputPeerUser(user_id=93372553, access_hash=9223372036854775807)",
		"Username expired: botfather (errors.Is ErrUsernameExpired: true)",
		"ExportSessionString: 362 chars",
		"ErrSessionNotFound: true",
		"owner: worker ",
		"errors.Is ErrHeld: true",
		"demo finished",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{nil, true},
		{[]string{"nope"}, true},
		{[]string{"help"}, false},
		{[]string{"demo", "-redis", "::bad::"}, true},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		if err := run(tc.args, &out); (err != nil) != tc.wantErr {
			t.Errorf("run(%q) err = %v; wantErr %v", tc.args, err, tc.wantErr)
		}
	}
}
