package messaging_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/messaging/internal/messaging"
)

// pushService is a local web push service: it checks each push's VAPID
// signature (RFC 8292), decrypts its payload (RFC 8291, aes128gcm) with
// the subscription's keys, and answers 201, or 404/410 for endpoints told
// to.
type pushService struct {
	srv *httptest.Server

	mu       sync.Mutex
	subs     map[string]*browser // by endpoint path
	answer   map[string]int
	received map[string][]messaging.PushPayload
	errs     []error
}

// browser is a subscription's private side.
type browser struct {
	key  *ecdh.PrivateKey
	auth []byte
}

func newPushService(t *testing.T) *pushService {
	ps := &pushService{subs: map[string]*browser{}, answer: map[string]int{}, received: map[string][]messaging.PushPayload{}}
	ps.srv = httptest.NewServer(http.HandlerFunc(ps.serve))
	t.Cleanup(ps.srv.Close)
	return ps
}

// subscribe makes a browser subscription: its endpoint and keys as the
// devices route takes them.
func (ps *pushService) subscribe(t *testing.T, name string) map[string]any {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	ps.mu.Lock()
	ps.subs["/push/"+name] = &browser{key: k, auth: auth}
	ps.mu.Unlock()
	return map[string]any{"endpoint": ps.srv.URL + "/push/" + name, "keys": map[string]any{
		"p256dh": base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), "auth": base64.RawURLEncoding.EncodeToString(auth)}}
}

func (ps *pushService) setAnswer(name string, status int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.answer["/push/"+name] = status
}

func (ps *pushService) got(name string) []messaging.PushPayload {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.received["/push/"+name]
}

func (ps *pushService) serve(w http.ResponseWriter, r *http.Request) {
	ps.mu.Lock()
	b, status := ps.subs[r.URL.Path], ps.answer[r.URL.Path]
	ps.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	body, _ := io.ReadAll(r.Body)
	payload, err := func() ([]byte, error) {
		if b == nil {
			return nil, errors.New("no such subscription")
		}
		if err := checkVAPID(r, ps.srv.URL); err != nil {
			return nil, err
		}
		if r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" {
			return nil, errors.New("missing Content-Encoding aes128gcm or TTL")
		}
		return decryptAES128GCM(b, body)
	}()
	if err != nil {
		ps.mu.Lock()
		ps.errs = append(ps.errs, err)
		ps.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var p messaging.PushPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ps.mu.Lock()
	ps.received[r.URL.Path] = append(ps.received[r.URL.Path], p)
	ps.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

// checkVAPID verifies the Authorization: vapid t=<JWT>, k=<key> header:
// an ES256 JWT signed by k, for the push service's origin, not expired,
// with a mailto: or https: subject.
func checkVAPID(r *http.Request, origin string) error {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "vapid ") {
		return errors.New("no vapid authorization")
	}
	var tok, key string
	for _, part := range strings.Split(strings.TrimPrefix(h, "vapid "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			tok = v
		case "k":
			key = v
		}
	}
	pub, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil || len(pub) != 65 {
		return errors.New("bad vapid key")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("bad jwt")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return errors.New("bad jwt signature encoding")
	}
	x, y := elliptic.Unmarshal(elliptic.P256(), pub) //nolint:staticcheck // the raw point is what VAPID sends
	if x == nil {
		return errors.New("bad vapid point")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(&ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return errors.New("vapid signature does not verify")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Aud string `json:"aud"`
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return err
	}
	if claims.Aud != origin {
		return errors.New("vapid aud is " + claims.Aud)
	}
	if !strings.HasPrefix(claims.Sub, "mailto:") && !strings.HasPrefix(claims.Sub, "https:") || strings.HasPrefix(claims.Sub, "mailto:mailto:") {
		return errors.New("vapid sub is " + claims.Sub)
	}
	if exp := time.Unix(claims.Exp, 0); exp.Before(time.Now()) || exp.After(time.Now().Add(24*time.Hour)) {
		return errors.New("vapid exp out of range")
	}
	return nil
}

// decryptAES128GCM opens an RFC 8291 message for the browser.
func decryptAES128GCM(b *browser, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("short body")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen || rs < 18 {
		return nil, errors.New("bad header")
	}
	asPub, ct := body[21:21+idlen], body[21+idlen:]
	as, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		return nil, err
	}
	secret, err := b.key.ECDH(as)
	if err != nil {
		return nil, err
	}
	mac := func(key []byte, parts ...[]byte) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write(p)
		}
		return m.Sum(nil)
	}
	prkKey := mac(b.auth, secret)
	info := append(append([]byte("WebPush: info\x00"), b.key.PublicKey().Bytes()...), asPub...)
	ikm := mac(prkKey, info, []byte{1})
	prk := mac(salt, ikm)
	cek := mac(prk, []byte("Content-Encoding: aes128gcm\x00\x01"))[:16]
	nonce := mac(prk, []byte("Content-Encoding: nonce\x00\x01"))[:12]
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, err
	}
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 || plain[i] != 2 {
		return nil, errors.New("bad padding delimiter")
	}
	return plain[:i], nil
}

// Pushes reach a person's devices encrypted for them; a subscription the
// push service ended (404, 410) is removed, and only that one; stale
// subscriptions are culled.
func TestWebPush(t *testing.T) {
	e := setup(t)
	ps := newPushService(t)
	tenant := plugintest.NewTenant()
	learner := e.person(tenant, "push@example.test", "Pia", "learner")
	var key map[string]any
	e.do(learner, "GET", "/api/v1/notifications/push-key", nil, 200).JSON(t, &key)
	require.NotEmpty(t, key["public_key"])

	e.do(learner, "POST", "/api/v1/notifications/devices", ps.subscribe(t, "laptop"), 201)
	phone := ps.subscribe(t, "phone")
	e.do(learner, "POST", "/api/v1/notifications/devices", phone, 201)
	e.do(learner, "POST", "/api/v1/notifications/devices", phone, 200) // again: an upsert
	bad := ps.subscribe(t, "x")
	bad["keys"].(map[string]any)["p256dh"] = strings.Repeat("A", 87)
	require.Equal(t, 422, e.h.Do(learner, "POST", "/api/v1/notifications/devices", bad).Status)

	ps.setAnswer("phone", http.StatusGone)
	e.deliver(graded(tenant, learner.UserID, 77))
	out := e.fanout(tenant)
	require.Contains(t, out, "push.sent 1", out)
	got := ps.got("laptop")
	require.Len(t, got, 1, "%v", ps.errs)
	require.Contains(t, got[0].Title, "77%")
	require.Equal(t, "grades", got[0].Category)

	var devices []map[string]any
	e.do(learner, "GET", "/api/v1/notifications/devices", nil, 200).JSON(t, &devices)
	require.Len(t, devices, 1, "the ended subscription is removed, the other kept")
	require.Contains(t, devices[0]["endpoint"], "/push/laptop")

	// Every device gone: the push is suppressed with its reason.
	ps.setAnswer("laptop", http.StatusNotFound)
	e.deliver(graded(tenant, learner.UserID, 78))
	e.fanout(tenant)
	ex := e.explain(learner, e.inbox(learner)[0]["id"].(string))
	require.Equal(t, "suppressed", ex["push"]["status"])
	require.Equal(t, "devices_gone", ex["push"]["reason_code"])
	e.do(learner, "GET", "/api/v1/notifications/devices", nil, 200).JSON(t, &devices)
	require.Empty(t, devices)

	// Culling: a device not seen for device_stale_days goes.
	ps.setAnswer("laptop", 0)
	e.do(learner, "POST", "/api/v1/notifications/devices", ps.subscribe(t, "tablet"), 201)
	e.advance(91 * 24 * time.Hour)
	out, err := e.h.RunJob(t, messaging.JobMaintenance, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(t, err)
	require.Contains(t, out, "1 stale device(s) removed")
	require.Empty(t, ps.errs)
}
