package commerce

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85"
)

// Webhook verification as Stripe specifies it
// (https://docs.stripe.com/webhooks#verify-manually): the Stripe-Signature
// header holds t=<unix seconds> and one or more v1=<hex HMAC-SHA256 of
// "<t>.<body>" under the endpoint's signing secret> (several while a secret
// is being rotated: one per secret), and perhaps other schemes (v0), which
// are ignored. The body must be the bytes as received.

// sigError is why a signature was refused: its code is the problem's.
type sigError struct{ code, detail string }

func (e *sigError) Error() string { return e.detail }

var (
	errNoSignature   = &sigError{"signature_missing", "the request has no Stripe-Signature header"}
	errBadHeader     = &sigError{"signature_malformed", "the Stripe-Signature header is not t=<timestamp>,v1=<signature>[,v1=...]"}
	errNoV1          = &sigError{"signature_malformed", "the Stripe-Signature header has no v1 signature"}
	errMismatch      = &sigError{"signature_mismatch", "no v1 signature of the Stripe-Signature header matches the body under the endpoint's signing secret"}
	errTooOld        = &sigError{"timestamp_outside_tolerance", "the signed timestamp is older than the tolerance: a replayed or delayed request"}
	errFromTheFuture = &sigError{"timestamp_outside_tolerance", "the signed timestamp is further in the future than the tolerance"}
)

// maxSignatures bounds the v1 values checked: rotation needs two.
const maxSignatures = 8

// verifySignature checks body against the Stripe-Signature header under
// secret, with the timestamp within tolerance of now either way. It returns
// the signed timestamp.
func verifySignature(header string, body []byte, secret string, now time.Time, tolerance time.Duration) (time.Time, error) {
	if header == "" {
		return time.Time{}, errNoSignature
	}
	if len(header) > 4096 {
		return time.Time{}, errBadHeader
	}
	var ts int64 = -1
	var sigs [][]byte
	for _, pair := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return time.Time{}, errBadHeader
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || ts != -1 {
				return time.Time{}, errBadHeader
			}
			ts = n
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				continue // not a v1 signature Stripe could have made
			}
			if len(sigs) < maxSignatures {
				sigs = append(sigs, sig)
			}
		}
	}
	if ts == -1 {
		return time.Time{}, errBadHeader
	}
	if len(sigs) == 0 {
		return time.Time{}, errNoV1
	}
	signed := time.Unix(ts, 0)
	// The signature first: an attacker learns nothing about the tolerance
	// without the secret.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	want := mac.Sum(nil)
	match := false
	for _, s := range sigs {
		if hmac.Equal(want, s) {
			match = true
		}
	}
	if !match {
		return time.Time{}, errMismatch
	}
	switch d := now.Sub(signed); {
	case d > tolerance:
		return time.Time{}, errTooOld
	case -d > tolerance:
		return time.Time{}, errFromTheFuture
	}
	return signed, nil
}

// apiVersionAccepted reports whether an event rendered in version v can be
// read by the plugin: Stripe's API version the plugin's stripe-go pins
// (stripe.APIVersion, "2026-03-25.dahlia"), or another of its release train
// (the part after the dot), whose objects have the same shape. stripe-go's
// own webhook.ConstructEvent applies the same rule.
func apiVersionAccepted(v string) bool {
	_, train, ok := strings.Cut(v, ".")
	_, ours, _ := strings.Cut(stripe.APIVersion, ".")
	return ok && train == ours
}
