package gotdstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotd/log"
	"github.com/gotd/td/bin"
	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/peers"
	"github.com/gotd/td/telegram/updates"
	"github.com/gotd/td/tg"
	"github.com/gotd/td/tgerr"
	"github.com/gotd/td/tgtest"
	"github.com/gotd/td/tgtest/cluster"
	"github.com/gotd/td/tgtest/services"
	"github.com/gotd/td/tgtest/services/config"
	"github.com/redis/go-redis/v9"
	"github.com/tgsession/redisstore"
	"github.com/tgsession/redisstore/gotdstore"
	"github.com/tgsession/redisstore/internal/redistest"
	"github.com/tgsession/redisstore/lock"
	"github.com/tgsession/redisstore/sessionstring"
	"github.com/tgsession/redisstore/storage"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// The account the test server says the client is (users.getUsers(self)).
const (
	selfID  = 5550001
	selfBot = true
)

// serverLog counts what gotd's in-process Telegram server logs: key
// exchanges, and connections opened and closed.
type serverLog struct {
	mu         sync.Mutex
	exchanges  int
	opened     int
	closed     int
	resolves   int            // contacts.resolveUsername calls
	inputUsers []tg.InputUser // InputUser values users.getUsers received
	events     []connEvent    // connections opened and closed, in order
}

// connEvent is a connection opened (open) or closed at the server.
type connEvent struct {
	open bool
	at   time.Time
}

// alice is the user the test server resolves @alice to.
var alice = &tg.User{ID: 777000, AccessHash: 4242424242, Username: "alice", Phone: "15551234567", FirstName: "Alice"}

func (l *serverLog) Enabled(context.Context, log.Level) bool { return true }

func (l *serverLog) Log(_ context.Context, _ log.Level, msg string, _ ...log.Attr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch msg {
	case "Starting key exchange":
		l.exchanges++
	case "User connected":
		l.opened++
		l.events = append(l.events, connEvent{true, time.Now()})
	case "User disconnected":
		l.closed++
		l.events = append(l.events, connEvent{false, time.Now()})
	}
}

func (l *serverLog) exchangeCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.exchanges
}

// testServer starts gotd's tgtest cluster on 127.0.0.1 with one DC (2)
// that answers help.getConfig and users.getUsers(self).
func testServer(t *testing.T, extra ...func(*tgtest.Server, *tgtest.Dispatcher)) (*cluster.Cluster, *serverLog) {
	t.Helper()
	sl := &serverLog{}
	c := cluster.NewCluster(cluster.Options{Logger: sl})
	srv, d := c.DC(2, "server")
	for _, f := range extra {
		f(srv, d)
	}
	d.Fallback(services.NotImplemented)
	config.NewService(&tg.Config{}, &tg.CDNConfig{}).Register(d)
	d.Handle(tg.UsersGetUsersRequestTypeID, tgtest.HandlerFunc(func(s *tgtest.Server, req *tgtest.Request) error {
		var r tg.UsersGetUsersRequest
		if err := r.Decode(req.Buf); err != nil {
			return err
		}
		var out []bin.Encoder
		for _, in := range r.ID {
			switch u := in.(type) {
			case *tg.InputUserSelf:
				out = append(out, &tg.User{ID: selfID, AccessHash: 99, Bot: selfBot, Self: true, Username: "test_bot"})
			case *tg.InputUser:
				sl.mu.Lock()
				sl.inputUsers = append(sl.inputUsers, *u)
				sl.mu.Unlock()
				if u.UserID == alice.ID && u.AccessHash == alice.AccessHash {
					out = append(out, alice)
				}
			}
		}
		return s.SendVector(req, out...)
	}))
	d.Handle(tg.ContactsResolveUsernameRequestTypeID, tgtest.HandlerFunc(func(s *tgtest.Server, req *tgtest.Request) error {
		var r tg.ContactsResolveUsernameRequest
		if err := r.Decode(req.Buf); err != nil {
			return err
		}
		sl.mu.Lock()
		sl.resolves++
		sl.mu.Unlock()
		if !strings.EqualFold(r.Username, alice.Username) {
			return s.SendErr(req, tgerr.New(400, "USERNAME_NOT_OCCUPIED"))
		}
		return s.SendResult(req, &tg.ContactsResolvedPeer{Peer: &tg.PeerUser{UserID: alice.ID}, Users: []tg.UserClass{alice}})
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Up(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("tgtest cluster: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("tgtest cluster not ready")
	}
	return c, sl
}

// recorder wraps session storage and records every auth key id stored.
type recorder struct {
	session.Storage
	t   *testing.T
	mu  sync.Mutex
	ids [][]byte
}

func (r *recorder) StoreSession(ctx context.Context, data []byte) error {
	var v struct{ Data session.Data }
	_ = jsonUnmarshal(data, &v)
	r.mu.Lock()
	r.ids = append(r.ids, v.Data.AuthKeyID)
	r.mu.Unlock()
	err := r.Storage.StoreSession(ctx, data)
	if err != nil && r.t != nil {
		r.t.Logf("StoreSession: %v", err)
	}
	return err
}

// distinct counts the distinct key ids in ids.
func distinct(ids [][]byte) int {
	var seen [][]byte
	for _, id := range ids {
		found := false
		for _, s := range seen {
			found = found || bytes.Equal(s, id)
		}
		if !found {
			seen = append(seen, id)
		}
	}
	return len(seen)
}

// tlog prints gotd's client log through t.Logf when TGSESSION_GOTD_LOG is set.
type tlog struct{ t *testing.T }

func (l tlog) Enabled(context.Context, log.Level) bool { return os.Getenv("TGSESSION_GOTD_LOG") != "" }

func (l tlog) Log(ctx context.Context, level log.Level, msg string, attrs ...log.Attr) {
	if l.Enabled(ctx, level) {
		l.t.Logf("client %v: %s %v", level, msg, attrs)
	}
}

// clientOptions are the options of a client on the test cluster.
func clientOptions(c *cluster.Cluster, st session.Storage) telegram.Options {
	return telegram.Options{
		PublicKeys:     c.Keys(),
		DC:             2,
		DCList:         c.List(),
		Resolver:       c.Resolver(),
		SessionStorage: st,
		RetryInterval:  50 * time.Millisecond,
		MaxRetries:     -1,
		// An update handler: without one gotd runs without updates and
		// never asks for self.
		UpdateHandler: telegram.UpdateHandlerFunc(func(context.Context, tg.UpdatesClass) error { return nil }),
	}
}

// waitSaved waits until st holds an auth key (gotd signals ready before it
// saves the session).
func waitSaved(ctx context.Context, st session.Storage) error {
	for {
		b, err := st.LoadSession(ctx)
		if err == nil && len(b) > 0 {
			return nil
		}
		if err != nil && !errors.Is(err, session.ErrNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// setup returns a client on the harness's redis-server and a key prefix of
// the test's own.
func setup(t *testing.T) (*redis.Client, string) {
	t.Helper()
	srv := redistest.Require(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb, "gotd-" + redistest.TempName(t)
}

// worker opens the session "acct" under prefix with a lease.
func worker(t *testing.T, rdb redis.UniversalClient, prefix, id string) *redisstore.Store {
	t.Helper()
	st, err := redisstore.New(rdb, "acct", redisstore.Options{Mode: redisstore.Leased, Create: true, Prefix: prefix,
		Lease: lock.Options{TTL: time.Second, WorkerID: id}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.Open(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// connect runs one client on st until its session is saved and its self is
// known, and returns the recorded key ids.
func connect(t *testing.T, c *cluster.Cluster, st *redisstore.Store, self chan struct{}) (*recorder, error) {
	return connectWith(t, c, st, self, nil, nil)
}

// connectWith is connect with an update handler for the client (nil: a
// no-op) and more to do once connected (nil: nothing).
func connectWith(t *testing.T, c *cluster.Cluster, st *redisstore.Store, self chan struct{},
	handler telegram.UpdateHandler, more func(ctx context.Context, client *telegram.Client) error) (*recorder, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g := gotdstore.New(st)
	rec := &recorder{Storage: g, t: t}
	o := clientOptions(c, rec)
	if handler != nil {
		o.UpdateHandler = handler
	}
	o.Logger = tlog{t}
	opts, err := g.Options(ctx, telegram.TestAppID, o)
	if err != nil {
		return nil, err
	}
	opts.SessionStorage = rec
	prev := opts.OnSelfSuccess
	opts.OnSelfSuccess = func(u *tg.User) {
		prev(u)
		select {
		case self <- struct{}{}:
		default:
		}
	}
	client := telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, opts)
	err = gotdstore.Run(ctx, st, client, func(ctx context.Context) error {
		if err := waitSaved(ctx, rec); err != nil {
			return err
		}
		select {
		case <-self:
		case <-ctx.Done():
			return ctx.Err()
		}
		if more != nil {
			return more(ctx, client)
		}
		return nil
	})
	return rec, err
}

// TestKeyReuseAcrossFailover (e2e 1 and 5): worker A creates the key; A
// loses its lease (an operator releases it, as after a partition) and its
// client is stopped; standby B takes the session over and connects with
// A's key: one key exchange and one key id at the server in all. A control
// run with empty storage per worker makes two. A's late write is refused.
// The session gotd created exports a Hydrogram string with the same dc_id,
// key, user id and is_bot.
func TestKeyReuseAcrossFailover(t *testing.T) {
	rdb, prefix := setup(t)
	ctx := context.Background()

	c, sl := testServer(t)
	a := worker(t, rdb, prefix, "worker-a")
	recA, err := connect(t, c, a, make(chan struct{}, 1))
	if err != nil {
		t.Fatalf("worker A: %v", err)
	}
	keyA, err := a.AuthKey(ctx)
	if err != nil || keyA == nil {
		t.Fatalf("A's stored key: %v, %v", keyA, err)
	}

	// A is deposed: its lease is force-released (the standby's Open below
	// then owns the session); A's client was stopped by Run's return, and
	// every later write of A is refused inside Redis.
	info, err := lock.Inspect(ctx, rdb, a.LeaseKey())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := lock.ForceRelease(ctx, rdb, a.LeaseKey(), info); err != nil || !ok {
		t.Fatalf("ForceRelease: %v %v", ok, err)
	}
	b := worker(t, rdb, prefix, "worker-b")
	defer b.Close()
	if err := a.SetAPIID(ctx, storage.Some[int64](1)); !errors.Is(err, lock.ErrLeaseLost) {
		t.Errorf("A's write after the takeover: %v; want lock.ErrLeaseLost", err)
	}
	a.Close()

	recB, err := connect(t, c, b, make(chan struct{}, 1))
	if err != nil {
		t.Fatalf("worker B: %v", err)
	}
	keyB, _ := b.AuthKey(ctx)
	all := append(append([][]byte{}, recA.ids...), recB.ids...)
	exchanges := sl.exchangeCount()
	t.Logf("failover: server key exchanges %d, distinct key ids stored %d (A stored %d times, B %d); same key before and after: %v",
		exchanges, distinct(all), len(recA.ids), len(recB.ids), bytes.Equal(keyA, keyB))
	if exchanges != 1 || distinct(all) != 1 || !bytes.Equal(keyA, keyB) {
		t.Errorf("want exactly 1 key exchange and 1 key id across the failover")
	}

	// e2e 5: a Hydrogram session string of what gotd created.
	str, err := b.ExportSessionString(ctx)
	if err != nil {
		t.Fatalf("ExportSessionString: %v", err)
	}
	d, err := sessionstring.Decode(str)
	if err != nil {
		t.Fatal(err)
	}
	if d.DCID != 2 || !bytes.Equal(d.AuthKey, keyA) || d.UserID != selfID || d.IsBot != selfBot || d.APIID != telegram.TestAppID {
		t.Errorf("exported string decodes to dc %d user %d bot %v api %d, same key %v; want dc 2 user %d bot %v api %d",
			d.DCID, d.UserID, d.IsBot, d.APIID, bytes.Equal(d.AuthKey, keyA), selfID, selfBot, telegram.TestAppID)
	}
	t.Logf("Hydrogram string: dc %d, user %d, bot %v, api_id %d, key id %s", d.DCID, d.UserID, d.IsBot, d.APIID, storage.AuthKey(d.AuthKey).ID())

	// Control: two workers with empty storage of their own: two exchanges.
	c2, sl2 := testServer(t)
	for _, name := range []string{"control-a", "control-b"} {
		st := worker(t, rdb, prefix+"-"+name, name)
		if _, err := connect(t, c2, st, make(chan struct{}, 1)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st.Close()
	}
	t.Logf("control (empty storage per worker): server key exchanges %d", sl2.exchangeCount())
	if sl2.exchangeCount() != 2 {
		t.Errorf("control run: %d key exchanges; want 2", sl2.exchangeCount())
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// updatesServer answers updates.getState (pts 100, counted) and
// updates.getDifference (recording the pts asked for), and remembers the
// last client session so the test can push updates to it.
type updatesServer struct {
	mu        sync.Mutex
	srv       *tgtest.Server
	sess      tgtest.Session
	getStates int
	diffPts   []int
}

func (u *updatesServer) register(s *tgtest.Server, d *tgtest.Dispatcher) {
	u.srv = s
	d.Handle(tg.UpdatesGetStateRequestTypeID, tgtest.HandlerFunc(func(s *tgtest.Server, req *tgtest.Request) error {
		var r tg.UpdatesGetStateRequest
		if err := r.Decode(req.Buf); err != nil {
			return err
		}
		u.mu.Lock()
		u.getStates++
		u.sess = req.Session
		u.mu.Unlock()
		return s.SendResult(req, &tg.UpdatesState{Pts: 100, Qts: 0, Date: int(time.Now().Unix()), Seq: 1})
	}))
	d.Handle(tg.UpdatesGetDifferenceRequestTypeID, tgtest.HandlerFunc(func(s *tgtest.Server, req *tgtest.Request) error {
		var r tg.UpdatesGetDifferenceRequest
		if err := r.Decode(req.Buf); err != nil {
			return err
		}
		u.mu.Lock()
		u.diffPts = append(u.diffPts, r.Pts)
		u.sess = req.Session
		u.mu.Unlock()
		return s.SendResult(req, &tg.UpdatesDifferenceEmpty{Date: int(time.Now().Unix()), Seq: 1})
	}))
}

func (u *updatesServer) snapshot() (getStates int, diffPts []int, sess tgtest.Session) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.getStates, append([]int(nil), u.diffPts...), u.sess
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

// runManager runs gotd's updates manager on the store's state until ctx is
// done, with started closed once it has loaded its state.
func runManager(ctx context.Context, client *telegram.Client, m *updates.Manager, started chan struct{}) error {
	err := m.Run(ctx, client.API(), selfID, updates.AuthOptions{IsBot: selfBot, OnStart: func(context.Context) { close(started) }})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// TestUpdateStateSurvivesFailover (e2e 2): worker A starts gotd's updates
// manager on an empty state (updates.getState: pts 100), the server pushes
// an update with pts 101, A stores it; A is deposed; B's manager finds pts
// 101 in Redis, asks updates.getDifference from 101 and never getState.
func TestUpdateStateSurvivesFailover(t *testing.T) {
	rdb, prefix := setup(t)
	us := &updatesServer{}
	c, _ := testServer(t, us.register)

	a := worker(t, rdb, prefix, "worker-a")
	ga := gotdstore.New(a)
	ma := updates.New(updates.Config{Handler: telegram.UpdateHandlerFunc(func(context.Context, tg.UpdatesClass) error { return nil }),
		Storage: ga, AccessHasher: ga, UserAccessHasher: ga})
	_, err := connectWith(t, c, a, make(chan struct{}, 1), ma, func(ctx context.Context, client *telegram.Client) error {
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- runManager(mctx, client, ma, started) }()
		select {
		case <-started:
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
		_, _, sess := us.snapshot()
		msg := &tg.Message{ID: 1, PeerID: &tg.PeerUser{UserID: selfID}, Message: "hello", Date: int(time.Now().Unix())}
		if err := us.srv.SendUpdates(ctx, sess, &tg.UpdateNewMessage{Message: msg, Pts: 101, PtsCount: 1}); err != nil {
			return err
		}
		if !waitFor(10*time.Second, func() bool {
			st, _, found, _ := a.UpdateState(ctx)
			return found && st.Pts == 101
		}) {
			return errors.New("A never stored pts 101")
		}
		stop()
		return <-done
	})
	if err != nil {
		t.Fatalf("worker A: %v", err)
	}
	getStatesA, diffA, _ := us.snapshot()
	a.Close() // A's client is stopped; its lease goes to the standby

	b := worker(t, rdb, prefix, "worker-b")
	defer b.Close()
	gb := gotdstore.New(b)
	mb := updates.New(updates.Config{Handler: telegram.UpdateHandlerFunc(func(context.Context, tg.UpdatesClass) error { return nil }),
		Storage: gb, AccessHasher: gb, UserAccessHasher: gb})
	_, err = connectWith(t, c, b, make(chan struct{}, 1), mb, func(ctx context.Context, client *telegram.Client) error {
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- runManager(mctx, client, mb, started) }()
		if !waitFor(10*time.Second, func() bool { _, diff, _ := us.snapshot(); return len(diff) > len(diffA) }) {
			return errors.New("B never asked updates.getDifference")
		}
		stop()
		return <-done
	})
	if err != nil {
		t.Fatalf("worker B: %v", err)
	}
	getStates, diffPts, _ := us.snapshot()
	diffB := diffPts[len(diffA):]
	t.Logf("update state: A called getState %d time(s), getDifference with pts %v, and stored pts 101; B called getState %d time(s), getDifference with pts %v",
		getStatesA, diffA, getStates-getStatesA, diffB)
	if getStates != getStatesA || len(diffB) == 0 || diffB[0] != 101 {
		t.Errorf("B must resume from pts 101 without getState")
	}
}

// TestPeersSurviveFailover (e2e 3): A resolves @alice through gotd's peers
// manager on the store; after the failover B sends InputUser{id, hash} from
// the store without resolving again, and the Hydrogram view of the same data
// (PeerByUsername, PeerByPhoneNumber) returns Alice.
func TestPeersSurviveFailover(t *testing.T) {
	rdb, prefix := setup(t)
	ctx := context.Background()
	c, sl := testServer(t)

	a := worker(t, rdb, prefix, "worker-a")
	if _, err := connectWith(t, c, a, make(chan struct{}, 1), nil, func(ctx context.Context, client *telegram.Client) error {
		g := gotdstore.New(a)
		pm := peers.Options{Storage: g, Cache: g}.Build(client.API())
		p, err := pm.ResolveDomain(ctx, "alice")
		if err != nil {
			return err
		}
		if p.ID() != alice.ID {
			return fmt.Errorf("resolved id %d", p.ID())
		}
		return nil
	}); err != nil {
		t.Fatalf("worker A: %v", err)
	}
	a.Close()

	b := worker(t, rdb, prefix, "worker-b")
	defer b.Close()
	if _, err := connectWith(t, c, b, make(chan struct{}, 1), nil, func(ctx context.Context, client *telegram.Client) error {
		g := gotdstore.New(b)
		v, found, err := g.Find(ctx, peers.Key{Prefix: "users_", ID: alice.ID})
		if err != nil || !found {
			return fmt.Errorf("alice's access hash in the store: found %v, %v", found, err)
		}
		users, err := client.API().UsersGetUsers(ctx, []tg.InputUserClass{&tg.InputUser{UserID: alice.ID, AccessHash: v.AccessHash}})
		if err != nil {
			return err
		}
		if len(users) != 1 {
			return fmt.Errorf("users.getUsers with the stored hash returned %d users", len(users))
		}
		return nil
	}); err != nil {
		t.Fatalf("worker B: %v", err)
	}
	sl.mu.Lock()
	resolves, inputs := sl.resolves, append([]tg.InputUser(nil), sl.inputUsers...)
	sl.mu.Unlock()
	p, err := b.PeerByUsername(ctx, "alice")
	if err != nil {
		t.Fatalf("core PeerByUsername(alice): %v", err)
	}
	byPhone, err := b.PeerByPhoneNumber(ctx, alice.Phone)
	if err != nil {
		t.Fatalf("core PeerByPhoneNumber: %v", err)
	}
	t.Logf("peers: resolveUsername called %d time(s) (by A); B sent %+v; core PeerByUsername(alice) = id %d hash %v phone %q type %s; by phone id %d",
		resolves, inputs, p.ID, p.AccessHash, p.PhoneNumber, p.Type, byPhone.ID)
	if resolves != 1 || len(inputs) != 1 || inputs[0].UserID != alice.ID || inputs[0].AccessHash != alice.AccessHash {
		t.Errorf("B must use A's stored hash without resolving")
	}
	if p.ID != alice.ID || !p.AccessHash.Valid || p.AccessHash.V != alice.AccessHash || p.PhoneNumber != alice.Phone || byPhone.ID != alice.ID {
		t.Errorf("the Hydrogram view does not see Alice as gotd stored her")
	}
}

// TestNoTwoLiveConnectionsWithOneKey (e2e 4): worker A is connected to
// Telegram and loses Redis only (a stalled proxy: its lease cannot be
// renewed, its Telegram connection stays up). B waits for the lease, gets it
// when A's lapses, and connects with the same key. The server's record of
// connections must show every connection of A closed before B's first one
// opened: never two live connections with one auth key.
func TestNoTwoLiveConnectionsWithOneKey(t *testing.T) {
	srv := redistest.Require(t)
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer direct.Close()
	proxy := redistest.NewProxy(t, srv.Addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr}) // default options, as users have them
	defer viaProxy.Close()
	prefix := "gotd-" + redistest.TempName(t)
	c, sl := testServer(t)

	a := worker(t, viaProxy, prefix, "worker-a")
	ga := gotdstore.New(a)
	optsA, err := ga.Options(context.Background(), telegram.TestAppID, clientOptions(c, ga))
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	resultA := make(chan error, 1)
	var lostAt time.Time
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		clientA := telegram.NewClient(telegram.TestAppID, telegram.TestAppHash, optsA)
		err := gotdstore.Run(ctx, a, clientA, func(ctx context.Context) error {
			if err := waitSaved(ctx, ga); err != nil {
				return err
			}
			close(connected)
			<-ctx.Done()
			lostAt = time.Now()
			return ctx.Err()
		})
		resultA <- err
	}()
	select {
	case <-connected:
	case err := <-resultA:
		t.Fatalf("worker A: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("worker A never connected")
	}
	sl.mu.Lock()
	eventsA := len(sl.events)
	sl.mu.Unlock()

	proxy.Stall() // A loses Redis; its Telegram connection stays up
	stalledAt := time.Now()
	b := worker(t, direct, prefix, "worker-b") // waits for A's lease to lapse
	acquiredAt := time.Now()
	defer b.Close()
	if _, err := connect(t, c, b, make(chan struct{}, 1)); err != nil {
		t.Fatalf("worker B: %v", err)
	}
	var errA error
	select {
	case errA = <-resultA:
	case <-time.After(30 * time.Second):
		t.Fatal("worker A's client never stopped")
	}
	proxy.Heal()

	sl.mu.Lock()
	events := append([]connEvent(nil), sl.events...)
	sl.mu.Unlock()
	open, lastCloseA, firstOpenB := 0, time.Time{}, time.Time{}
	violation := false
	for i, e := range events {
		if i >= eventsA && e.open && firstOpenB.IsZero() && !e.at.Before(acquiredAt) {
			firstOpenB = e.at
			violation = open > 0
		}
		if e.open {
			open++
		} else {
			open--
			if firstOpenB.IsZero() {
				lastCloseA = e.at
			}
		}
	}
	t.Logf("A stalled at 0; A's client stopped (Lost) at %v, its last connection closed at %v; B acquired at %v, its first connection opened at %v: gap %v; A returned %v",
		lostAt.Sub(stalledAt).Round(time.Millisecond), lastCloseA.Sub(stalledAt).Round(time.Millisecond),
		acquiredAt.Sub(stalledAt).Round(time.Millisecond), firstOpenB.Sub(stalledAt).Round(time.Millisecond),
		firstOpenB.Sub(lastCloseA).Round(time.Millisecond), errA)
	if !errors.Is(errA, gotdstore.ErrLeaseLost) {
		t.Errorf("A's Run returned %v; want gotdstore.ErrLeaseLost", errA)
	}
	if firstOpenB.IsZero() || lastCloseA.IsZero() || violation || !lastCloseA.Before(firstOpenB) {
		t.Errorf("two live connections with one auth key: A's last close %v, B's first open %v (open at that moment: %v)", lastCloseA, firstOpenB, violation)
	}
}
