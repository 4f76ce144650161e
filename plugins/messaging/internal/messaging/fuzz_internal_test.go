package messaging

import (
	"strings"
	"testing"
	"time"
)

// FuzzUnsubscribeToken: whatever the path holds, parsing never panics,
// and only a token this key signed is accepted, naming what was signed.
func FuzzUnsubscribeToken(f *testing.F) {
	p := &Plugin{unsubKey: []byte("0123456789abcdef0123456789abcdef")}
	good := p.signToken(unsubToken{Tenant: "0190a3a4-0000-7000-8000-000000000001", User: "0190a3a4-0000-7000-8000-000000000002",
		Category: CatGrades, Issued: time.Unix(1700000000, 0)})
	f.Add(good)
	f.Add("")
	f.Add(strings.Repeat("A", 300))
	f.Add(good[:len(good)-1] + "B")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := p.parseToken(s)
		if err != nil {
			return
		}
		if s != good && p.signToken(tok) != s {
			t.Fatalf("accepted a token it did not sign: %q", s)
		}
		if ci, ok := categoryOf(tok.Category); !ok || !(ci.Configurable || ci.Category == CatDigest) {
			t.Fatalf("accepted category %q", tok.Category)
		}
	})
}

// FuzzEmoji: the emoji check never panics and accepts only short, valid
// UTF-8 without control characters.
func FuzzEmoji(f *testing.F) {
	for _, s := range []string{"👍", "👩‍👩‍👧", "🇫🇷", "a", "", "\x00", "👍\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !validEmoji(s) {
			return
		}
		if len(s) > 32 || strings.ContainsAny(s, "\x00\r\n<>\"'") {
			t.Fatalf("accepted %q", s)
		}
	})
}
