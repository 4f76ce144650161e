package sdk

import (
	"strings"

	"github.com/google/uuid"
)

// IsUUID reports whether s is a UUID in its canonical 36-character form
// (any case): the form of every ID the kernel hands out.
//
// Since: v1.2
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// NormalizeUUID is s in lowercase when it is a UUID, and whether it is.
//
// Since: v1.2
func NormalizeUUID(s string) (string, bool) {
	if !IsUUID(s) {
		return "", false
	}
	return strings.ToLower(s), true
}
