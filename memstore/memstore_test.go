package memstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tgsession/redisstore/memstore"
	"github.com/tgsession/redisstore/storage"
	"github.com/tgsession/redisstore/storage/storagetest"
)

var seq atomic.Int64

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, clock func() time.Time) storage.Storage {
		return memstore.New(fmt.Sprintf("mem-%d", seq.Add(1)), memstore.Options{Clock: clock})
	})
}
