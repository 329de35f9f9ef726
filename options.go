package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tgsession/redisstore/keyring"
	"github.com/tgsession/redisstore/lock"
)

// DefaultRefreshWindow is Options.RefreshWindow's default: an owner with a
// cache rewrites an unchanged peer at most once an hour.
const DefaultRefreshWindow = time.Hour

// DefaultBatchSize is how many peers one UpdatePeers script call carries at
// most; MaxBatchSize is the largest Options.BatchSize allowed.
const (
	DefaultBatchSize = 1000
	MaxBatchSize     = 100000
)

// A script blocks the whole Redis server while it runs (other clients wait;
// leases go unrenewed), so every script the store sends is bounded by
// construction: UpdatePeers and ImportPeers cut a batch into script calls of
// at most BatchSize peers, maxScriptUnits units of work (a peer, each of its
// usernames and its phone number count one each) and maxScriptBytes of
// arguments, whatever the options. Measured on Redis 7.0 here, a unit costs
// 1.4-3 µs of script time, so a script takes about 1.5 ms (p99 3-4 ms while
// 100k peers x 64 usernames are written; TestScriptCostBounded). Budgets of
// 500 and 1000 units wrote at the same rate; 500 halves the tail.
const (
	maxScriptUnits = 500
	maxScriptBytes = 256 << 10
)

// Mode is how a store owns its session. It has no default: every store is
// built in one mode explicitly, because a worker that forgot its lease would
// write behind another worker's back.
type Mode int

const (
	// Leased is a worker's mode: Open waits (as long as its context allows)
	// for the session's lease (package lock), renews it in the background, and
	// Close releases it; every write is fenced by the lease token. Use
	// Lease().Lost() to learn the moment ownership is lost.
	Leased Mode = iota + 1
	// Unfenced is for single-process use and operator tools: no lease; writes
	// are refused (lock.ErrHeld) while a worker holds the session's lease.
	Unfenced
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case Leased:
		return "Leased"
	case Unfenced:
		return "Unfenced"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Options configure a Store, in the style of go-redis's redis.Options and
// lock.Options: a plain struct whose zero fields take defaults. Mode is the
// one field without a default.
type Options struct {
	// Mode is required: Leased for workers, Unfenced for single-process use
	// and tools.
	Mode Mode

	// Lease configures a Leased store's lease; the zero value uses lock's
	// defaults (TTL 15 s). Ignored when Unfenced.
	Lease lock.Options

	// LeaseManager, if set, holds a Leased store's lease instead of a lease
	// of its own (lock.Manager: one renewal goroutine for all the leases a
	// worker holds; Lease is then ignored, the manager's options apply).
	// Open does not wait for the lease: it fails at once with lock.ErrHeld
	// while another worker owns the session (a fleet decides when to try
	// again).
	LeaseManager *lock.Manager

	// RefreshWindow (with CacheSize) lets the owner skip writing a peer its
	// cache shows stored exactly as UpdatePeers would store it, except for
	// last_update_on, and holding every username and phone it lists, when
	// that stored last_update_on is less than RefreshWindow old; an update
	// whose peers are all skipped makes no round trip. Default DefaultRefreshWindow; negative writes every peer every
	// time. The price: a skipped peer's last_update_on stays at its last
	// write, so it lags the latest sighting by less than RefreshWindow (plus
	// the time until the peer is seen again), and so does what compares it:
	// which of two peers listing one username holds it, and username expiry
	// (storage.UsernameTTL, 8 hours; keep RefreshWindow well below it).
	RefreshWindow time.Duration

	// Keys, when set, encrypts the auth key before it is sent to Redis
	// (package keyring: AES-256-GCM with the provider's current key, bound to
	// the prefix, the session name and the field), so Redis, its replicas,
	// dumps, AOF files, MONITOR and command hooks only see ciphertext. Stored
	// keys are read whichever key of the provider sealed them; plaintext ones
	// (written without Keys) stay readable and are encrypted on their next
	// write. Without Keys, reading an encrypted key fails with an error
	// wrapping keyring.ErrUnknownKey that names the key ID it needs.
	Keys keyring.KeyProvider

	// Prefix is the key prefix (default DefaultPrefix), e.g. one per tenant.
	// It must not contain '{' or '}'.
	Prefix string

	// Clock is read for last_update_on, username expiry and Save (default
	// time.Now).
	Clock func() time.Time

	// BatchSize is how many peers one UpdatePeers script call carries at
	// most (default DefaultBatchSize, at most MaxBatchSize). Larger batches
	// are split, and so are batches whose usernames and phones are more work
	// than one short script should do; each part is atomic on its own.
	BatchSize int

	// OpenExisting makes Open fail with storage.ErrSessionNotFound instead of
	// creating a missing session (for tools that inspect or export).
	OpenExisting bool

	// Create lets a Leased store's Open create the session when it does not
	// exist: set it where creating is meant (a first login, an import, the
	// demo). Without it a Leased Open of a missing session fails, with
	// ErrSessionLost when the session was known (registered, or opened by
	// this store before: a FLUSHALL, a restart without persistence or an
	// eviction took it), and with storage.ErrSessionNotFound otherwise (both
	// when nothing at all is registered under the prefix: never created, or
	// flushed with everything else). A worker thus never carries on with a
	// blank session in place of an account. An Unfenced store creates a
	// missing session unless OpenExisting, as Hydrogram's storages do.
	Create bool

	// RecreateLost lets Open create a session afresh whose name is
	// registered but whose data is gone (evicted, flushed or deleted by hand).
	// Without it such an Open fails with ErrSessionLost, so a fleet never
	// carries on with a blank session in place of an account. Imports set it.
	RecreateLost bool

	// AllowEviction lets a Leased store open on a server whose
	// maxmemory-policy may evict its keys. Without it, Open refuses such a
	// server: an evicted session hash loses the auth key, and an evicted
	// lease lets two workers own one session.
	AllowEviction bool

	// Logger, if set, receives warnings the store cannot return as errors
	// (an ACL that hides the eviction policy), and is the lease's logger
	// unless Lease.Logger is set. nil logs nothing.
	Logger *slog.Logger

	// Durability makes critical writes wait for replicas; the zero value
	// does not wait.
	Durability Durability

	// CacheSize, when positive, lets a Leased store serve lookups and the
	// session fields from process memory, keeping at most CacheSize peers
	// (least recently used out). Holding the lease, the store is the only
	// writer, so its own writes are all that can change the data. The cache
	// is invalidated by this store's writes and dropped (and bypassed)
	// whenever the lease is not valid: lost, expired by the owner's own
	// deadline, or released. After an operator's force-release the owner
	// learns of it at its next renewal, so it may serve its cache for up to
	// Lease.RenewEvery longer. Requires Leased.
	CacheSize int
}

// Durability makes the store's critical writes (any write of the auth key
// or dc_id: SetAuthKey, SetDCID, SetSession, ImportSessionString) wait until
// Replicas replicas confirm them (Redis WAIT on the same connection, on every
// topology), up to Timeout. A write confirmed by fewer returns an error
// wrapping storage.ErrNotDurable: it was applied on the primary but a failover
// now could lose it. Combine with lock.Options.WaitReplicas for the lease.
// Other writes (the peer cache) are not waited for.
type Durability struct {
	Replicas int
	Timeout  time.Duration
}

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	switch o.Mode {
	case Leased, Unfenced:
	case 0:
		return o, errors.New("redisstore: choose an ownership mode: Options{Mode: redisstore.Leased} for workers, or Options{Mode: redisstore.Unfenced} for single-process use and tools")
	default:
		return o, fmt.Errorf("redisstore: unknown %v: use redisstore.Leased or redisstore.Unfenced", o.Mode)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.RefreshWindow == 0 {
		o.RefreshWindow = DefaultRefreshWindow
	}
	if err := validPrefix(o.Prefix); err != nil {
		return o, err
	}
	switch {
	case o.BatchSize == 0:
		o.BatchSize = DefaultBatchSize
	case o.BatchSize < 0 || o.BatchSize > MaxBatchSize:
		return o, fmt.Errorf("redisstore: batch size %d must be 1-%d (0 means %d)", o.BatchSize, MaxBatchSize, DefaultBatchSize)
	}
	if d := o.Durability; d != (Durability{}) && (d.Replicas < 1 || d.Timeout <= 0) {
		return o, fmt.Errorf("redisstore: durability needs at least 1 replica and a positive timeout (got %d, %v)", d.Replicas, d.Timeout)
	}
	if o.Lease.Logger == nil {
		o.Lease.Logger = o.Logger
	}
	if o.Create && o.OpenExisting {
		return o, errors.New("redisstore: Create and OpenExisting contradict each other: set one")
	}
	switch {
	case o.CacheSize < 0:
		return o, fmt.Errorf("redisstore: cache size %d must not be negative (0 means no cache)", o.CacheSize)
	case o.CacheSize > 0 && o.Mode != Leased:
		return o, errors.New("redisstore: CacheSize needs Mode Leased: only the session's owner can trust its memory")
	}
	return o, nil
}
