package storage

import "fmt"

// Null is a value that may be NULL, the way a Hydrogram session field may be
// None. The zero value is NULL. It mirrors database/sql.Null.
type Null[T any] struct {
	V     T
	Valid bool // false means NULL
}

// Some returns a non-NULL value.
func Some[T any](v T) Null[T] { return Null[T]{V: v, Valid: true} }

// Get returns the value and whether it is set.
func (n Null[T]) Get() (T, bool) { return n.V, n.Valid }

// String returns "NULL" or the value formatted with %v.
func (n Null[T]) String() string {
	if !n.Valid {
		return "NULL"
	}
	return fmt.Sprint(n.V)
}
