package commerce

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The webhook intake takes outside input: the Stripe-Signature header and
// the body. Whatever they hold, verification and parsing never panic, a
// signature is accepted only when one v1 is the body's HMAC under the
// secret within the tolerance, and an accepted event is one the database
// can store (valid UTF-8 JSON without NUL) with the fields processing reads.
func FuzzWebhookIntake(f *testing.F) {
	const secret = "whsec_fuzz"
	now := time.Unix(1_800_000_000, 0)
	event := []byte(`{"id":"evt_1","object":"event","type":"checkout.session.completed","created":1800000000,"api_version":"2026-03-25.dahlia","data":{"object":{"id":"cs_1"}}}`)
	good := func(body []byte, at int64) string {
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "%d.", at)
		mac.Write(body)
		return fmt.Sprintf("t=%d,v1=%s", at, hex.EncodeToString(mac.Sum(nil)))
	}
	f.Add(good(event, now.Unix()), event)
	f.Add(good(event, now.Unix()-1000), event)
	f.Add("t=1,v1=00", []byte(`{}`))
	f.Add("t=1800000000,v1="+strings.Repeat("a", 64)+",v0=x", []byte(`{"id":"evt_x","object":"event"}`))
	f.Add("", []byte(`{"id":"evt_1","object":"event","type":"a","created":1,"data":{"object":{"x":"\u0000"}}}`))
	f.Add(good([]byte("\xff\xfe"), now.Unix()), []byte("\xff\xfe"))
	f.Add(good([]byte(`{"id":"evt_1"} {}`), now.Unix()), []byte(`{"id":"evt_1"} {}`))
	f.Add("", []byte(`{"id":"evt_1","object":"event","type":"a","created":1,"data":{"object":{"x":"\\u0000"}}}`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		signed, err := verifySignature(header, body, secret, now, 5*time.Minute)
		if err == nil {
			mac := hmac.New(sha256.New, []byte(secret))
			fmt.Fprintf(mac, "%d.", signed.Unix())
			mac.Write(body)
			if !strings.Contains(strings.ToLower(header), hex.EncodeToString(mac.Sum(nil))) {
				t.Fatalf("accepted a header without the body's signature: %q", header)
			}
			if d := now.Sub(signed); d > 5*time.Minute || d < -5*time.Minute {
				t.Fatalf("accepted a timestamp %s from now", d)
			}
		} else if _, ok := err.(*sigError); !ok {
			t.Fatalf("an error without its problem code: %v", err)
		}
		ev, stored, err := parseEvent(body)
		if err != nil {
			return
		}
		var doc any
		if !utf8.Valid(stored) || json.Unmarshal(stored, &doc) != nil || containsNUL(doc) || bytes.IndexByte(stored, 0) >= 0 {
			t.Fatalf("an accepted event the database cannot store: %q", stored)
		}
		if ev.Object != "event" || !eventIDPattern.MatchString(ev.ID) || !eventTypePattern.MatchString(ev.Type) || ev.Created <= 0 ||
			len(ev.Data.Object) == 0 || ev.Data.Object[0] != '{' || len(ev.APIVersion) > 40 {
			t.Fatalf("an accepted event without what processing reads: %+v", ev)
		}
	})
}

// TestWebhookTextThatLooksLikeNUL: a string holding the text \u0000 (a
// backslash, then "u0000", as a customer may type) is no NUL character:
// the event is taken, and stored as sent; a real NUL is refused.
func TestWebhookTextThatLooksLikeNUL(t *testing.T) {
	body := []byte(`{"id":"evt_1","object":"event","type":"customer.updated","created":1800000000,"data":{"object":{"name":"C:\\u0000dir"}}}`)
	_, stored, err := parseEvent(body)
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	var doc struct {
		Data struct {
			Object struct {
				Name string `json:"name"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(stored, &doc); err != nil || doc.Data.Object.Name != `C:\u0000dir` {
		t.Fatalf("stored %s (%v)", stored, err)
	}
	if _, _, err := parseEvent([]byte(`{"id":"evt_1","object":"event","type":"customer.updated","created":1800000000,"data":{"object":{"na\u0000me":"x"}}}`)); err == nil {
		t.Fatal("a NUL in a key was taken")
	}
}
