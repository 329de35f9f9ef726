package redisutil

import "strings"

// InfoField returns the value of field in an INFO or CLUSTER INFO reply
// ("field:value" lines), or "" when the reply has no such field.
func InfoField(reply, field string) string {
	for _, line := range strings.Split(reply, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			return v
		}
	}
	return ""
}
