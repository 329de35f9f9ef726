package filestore_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tgsession/redisstore/filestore"
	"github.com/tgsession/redisstore/storage"
	"github.com/tgsession/redisstore/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, clock func() time.Time) storage.Storage {
		return filestore.New(filepath.Join(t.TempDir(), "conformance.session"), filestore.Options{Clock: clock})
	})
}
