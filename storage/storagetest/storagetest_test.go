package storagetest

import (
	"testing"
	"time"
)

func TestFixtureLoads(t *testing.T) {
	t.Parallel()
	f, err := loadFixture()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.PeersWritten) != 24 {
		t.Errorf("fixture has %d peers; want 24", len(f.PeersWritten))
	}
	counts := []struct {
		name string
		got  int
		want int
	}{
		{"by_id", len(f.Expected.ByID), 29},
		{"by_username", len(f.Expected.ByUsername), 17},
		{"by_phone_number", len(f.Expected.ByPhoneNumber), 8},
		{"username_ttl_matrix", len(f.Expected.TTLMatrix), 20},
	}
	for _, c := range counts {
		if c.got != c.want {
			t.Errorf("%s: %d cases; want %d", c.name, c.got, c.want)
		}
	}
	sess, err := f.session()
	if err != nil || len(sess.AuthKey) != 256 {
		t.Errorf("fixture session: %v, key %d bytes", err, len(sess.AuthKey))
	}
	for _, c := range f.Expected.ByID {
		if c.Result != nil {
			if _, err := c.Result.inputPeer(); err != nil {
				t.Error(err)
			}
		}
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	c := NewClock(100)
	if got := c.Now().Unix(); got != 100 {
		t.Errorf("Now = %d", got)
	}
	c.Add(90 * time.Second)
	if got := c.Now().Unix(); got != 190 {
		t.Errorf("after Add: %d", got)
	}
	c.Set(-5)
	if got := c.Now().Unix(); got != -5 {
		t.Errorf("after Set: %d", got)
	}
}
