// Package storage is the Go form of Hydrogram's session storage contract
// (hydrogram.storage.BaseStorage): the [Storage] interface every engine
// implements, the [Session] fields, the [Peer] cache entry, Bot-API style id
// helpers and the sentinel errors callers test with errors.Is.
//
// The package has no dependencies outside the standard library, so a user can
// implement [Storage] for their own backend without pulling in Redis, and run
// the shared conformance suite in package storagetest against it.
//
// # The contract
//
// A Storage holds one Telegram session, named when the engine is built:
//
//   - Open connects or creates the session (a new session has dc_id 2, date 0
//     and every other field NULL, exactly like a new Hydrogram file). Open must
//     work again after Close. Every other call requires an open store and
//     returns [ErrClosed] otherwise.
//   - Save stamps date with the engine's clock (unix seconds). Writes are
//     durable when the call returns; Save is not needed for durability.
//   - Close releases what Open acquired. It does not delete anything.
//   - Delete removes the session and its whole peer cache. Deleting a session
//     that does not exist is not an error.
//   - Every session field except date may be NULL, represented by an invalid
//     [Null] (or a nil [AuthKey]); a setter given a NULL value clears the field,
//     which Hydrogram's Client does at login. Getters of a session that does not
//     exist (deleted by another process) return [ErrSessionNotFound].
//   - Setters validate before writing: a bad value returns an error wrapping
//     [ErrInvalid] and leaves stored data unchanged.
//   - UpdatePeers replaces whole rows (a peer written without a username loses
//     its cached username), stamps LastUpdateOn with the engine's clock, lets
//     the last occurrence of a duplicated id win, and is a no-op for an empty
//     batch. A batch with any invalid peer writes nothing.
//   - Like Hydrogram, several cached peers may list the same username or phone
//     number; lookups return the holder written most recently (greatest
//     LastUpdateOn, ties to the later write). Older holders keep their rows
//     as written. When that latest holder drops the name, the name stops
//     resolving until a peer is cached with it again (Hydrogram would fall back
//     to an older, likely expired, row).
//   - A "min" peer (Peer.Min) never replaces a known full access hash.
//   - Usernames and phone numbers are normalized on the way in (UpdatePeers)
//     and on lookup, by [NormalizeUsername] and [NormalizePhoneNumber]; the
//     documentation of those two functions is the rule, and [Peer.Normalized]
//     says what is valid after it. A lookup key that cannot be valid is a
//     miss. (Hydrogram's storage compares exactly and leaves normalization to
//     its Client; this is the one documented difference.)
//   - A username whose holder was written more than [UsernameTTL] ago
//     (strictly greater, either direction of the clock) is reported as
//     [ErrUsernameExpired] so the caller re-resolves it.
//   - Misses are [*LookupError] values wrapping [ErrPeerNotFound] or
//     [ErrUsernameExpired]; their text is Hydrogram's KeyError text (a key
//     longer than [MaxExcerpt] bytes is quoted as an [Excerpt]).
//
// Optional interfaces, each checked by the conformance suite when an engine
// implements it: [PeerScanner] and [PeerImporter] (what [Copy] needs), and
// [Replacer], which replaces a whole session in one atomic step: the new
// content is built beside the stored session, invisible until Commit, and
// an Abort or a failure leaves the stored session as it was. Imports
// ([ImportSessionString], [Copy] with CopyOptions.Replace) use it, so bad
// input or a failure half-way never costs a stored session.
//
// The engine's clock is injectable (every engine takes one) so tests and the
// conformance suite can plant timestamps.
package storage
