package token

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/dbtest"
	"github.com/edulure/edulure/kernel/internal/seal"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

const testIssuer = "edulure-test"

func newSealer(t testing.TB, b byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{b}, 32))
	require.NoError(t, err)
	return s
}

// newKeyring returns a keyring on a fresh database, with its pool.
func newKeyring(t testing.TB) (*Keyring, *pgxpool.Pool, string) {
	t.Helper()
	pool, url := dbtest.NewPool(t)
	k, err := NewKeyring(context.Background(), pool, newSealer(t, 1), Options{Issuer: testIssuer, TTL: 15 * time.Minute})
	require.NoError(t, err)
	return k, pool, url
}

// userClaims are the claims a login would put in a token.
func userClaims() Claims {
	return Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: uuid.NewString()},
		SessionID:        uuid.NewString(),
		TenantID:         uuid.NewString(),
	}
}

func issue(t testing.TB, k *Keyring) (string, Claims) {
	t.Helper()
	c := userClaims()
	raw, _, err := k.Issue(c)
	require.NoError(t, err)
	return raw, c
}

// fullClaims are claims as Issue would fill them in, for hand-made tokens.
func fullClaims(k *Keyring) Claims {
	now := k.now()
	c := userClaims()
	c.Issuer = k.issuer
	c.Audience = jwt.ClaimStrings{Audience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(5 * time.Minute))
	c.ID = uuid.NewString()
	return c
}

// sign makes a token by hand, with any method, kid and key.
func sign(t testing.TB, method jwt.SigningMethod, kid string, key any, c Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, &c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func headerKID(t testing.TB, raw string) string {
	t.Helper()
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	require.NoError(t, err)
	var h struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
	}
	require.NoError(t, json.Unmarshal(b, &h))
	require.Equal(t, "EdDSA", h.Alg)
	return h.Kid
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	k, _, _ := newKeyring(t)
	c := userClaims()
	c.Operator, c.MFA = true, true
	before := time.Now()
	raw, exp, err := k.Issue(c)
	require.NoError(t, err)
	require.WithinDuration(t, before.Add(15*time.Minute), exp, 2*time.Second)
	require.Equal(t, k.ActiveKID(), headerKID(t, raw))

	for _, pass := range []string{"first verification", "cached verification"} {
		got, err := k.Verify(context.Background(), raw)
		require.NoError(t, err, pass)
		require.Equal(t, c.Subject, got.Subject, pass)
		require.Equal(t, c.SessionID, got.SessionID, pass)
		require.Equal(t, c.TenantID, got.TenantID, pass)
		require.True(t, got.Operator, pass)
		require.True(t, got.MFA, pass)
		require.Equal(t, testIssuer, got.Issuer, pass)
		require.Equal(t, jwt.ClaimStrings{Audience}, got.Audience, pass)
		require.Equal(t, exp.Unix(), got.ExpiresAt.Unix(), pass)
		require.NotEmpty(t, got.ID, pass)
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	k, _, _ := newKeyring(t)
	active := k.activeKey()
	_, strangerKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  error
	}{
		{
			name: "tampered payload",
			token: func(t *testing.T) string {
				raw, _ := issue(t, k)
				parts := strings.Split(raw, ".")
				payload, err := base64.RawURLEncoding.DecodeString(parts[1])
				require.NoError(t, err)
				var m map[string]any
				require.NoError(t, json.Unmarshal(payload, &m))
				m["sub"] = uuid.NewString() // become someone else
				m["op"] = true
				payload, err = json.Marshal(m)
				require.NoError(t, err)
				parts[1] = base64.RawURLEncoding.EncodeToString(payload)
				return strings.Join(parts, ".")
			},
			want: ErrSignature,
		},
		{
			name: "tampered signature",
			token: func(t *testing.T) string {
				raw, _ := issue(t, k)
				parts := strings.Split(raw, ".")
				sig, err := base64.RawURLEncoding.DecodeString(parts[2])
				require.NoError(t, err)
				sig[10] ^= 0x01
				parts[2] = base64.RawURLEncoding.EncodeToString(sig)
				return strings.Join(parts, ".")
			},
			want: ErrSignature,
		},
		{
			name: "signature stripped",
			token: func(t *testing.T) string {
				raw, _ := issue(t, k)
				return raw[:strings.LastIndex(raw, ".")+1]
			},
			want: ErrSignature,
		},
		{
			name: "alg none",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodNone, active.kid, jwt.UnsafeAllowNoneSignatureType, fullClaims(k))
			},
			want: ErrSignature,
		},
		{
			name: "HS256 keyed with the public key (algorithm confusion)",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, active.kid, []byte(active.pub), fullClaims(k))
			},
			want: ErrSignature,
		},
		{
			name: "HS256 keyed with the JWKS x value",
			token: func(t *testing.T) string {
				x := base64.RawURLEncoding.EncodeToString(active.pub)
				return sign(t, jwt.SigningMethodHS256, active.kid, []byte(x), fullClaims(k))
			},
			want: ErrSignature,
		},
		{
			name: "signed by a stranger's key under our kid",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodEdDSA, active.kid, strangerKey, fullClaims(k))
			},
			want: ErrSignature,
		},
		{
			name: "unknown kid",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodEdDSA, uuid.NewString(), strangerKey, fullClaims(k))
			},
			want: ErrUnknownKey,
		},
		{
			name: "no kid",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodEdDSA, "", active.priv, fullClaims(k))
			},
			want: ErrUnknownKey,
		},
		{
			name: "wrong issuer",
			token: func(t *testing.T) string {
				c := fullClaims(k)
				c.Issuer = "someone-else"
				return sign(t, jwt.SigningMethodEdDSA, active.kid, active.priv, c)
			},
			want: ErrClaims,
		},
		{
			name: "wrong audience",
			token: func(t *testing.T) string {
				c := fullClaims(k)
				c.Audience = jwt.ClaimStrings{"another-api"}
				return sign(t, jwt.SigningMethodEdDSA, active.kid, active.priv, c)
			},
			want: ErrClaims,
		},
		{
			name: "no expiry",
			token: func(t *testing.T) string {
				c := fullClaims(k)
				c.ExpiresAt = nil
				return sign(t, jwt.SigningMethodEdDSA, active.kid, active.priv, c)
			},
			want: ErrClaims,
		},
		{
			name: "subject is not a user ID",
			token: func(t *testing.T) string {
				c := fullClaims(k)
				c.Subject = "admin"
				return sign(t, jwt.SigningMethodEdDSA, active.kid, active.priv, c)
			},
			want: ErrClaims,
		},
		{
			name: "no session",
			token: func(t *testing.T) string {
				c := fullClaims(k)
				c.SessionID = ""
				return sign(t, jwt.SigningMethodEdDSA, active.kid, active.priv, c)
			},
			want: ErrClaims,
		},
		{
			name: "issued in the future",
			token: func(t *testing.T) string {
				c := fullClaims(k)
				c.IssuedAt = jwt.NewNumericDate(time.Now().Add(10 * time.Minute))
				return sign(t, jwt.SigningMethodEdDSA, active.kid, active.priv, c)
			},
			want: ErrClaims,
		},
		{
			name: "signature with non-canonical base64 (same bytes, different token)",
			token: func(t *testing.T) string {
				raw, _ := issue(t, k)
				alt := malleate(raw)
				require.NotEmpty(t, alt, "a 64-byte signature has spare bits in its last base64 character")
				return alt
			},
			want: ErrMalformed,
		},
		{name: "garbage", token: func(*testing.T) string { return "not a token" }, want: ErrMalformed},
		{name: "three empty parts", token: func(*testing.T) string { return ".." }, want: ErrMalformed},
		{name: "a.b.c", token: func(*testing.T) string { return "a.b.c" }, want: ErrMalformed},
		{name: "oversized", token: func(*testing.T) string { return strings.Repeat("a", 5000) }, want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := tt.token(t)
			got, err := k.Verify(context.Background(), raw)
			require.ErrorIs(t, err, tt.want)
			require.Nil(t, got)
			// A rejection is not cached as anything else.
			got, err = k.Verify(context.Background(), raw)
			require.ErrorIs(t, err, tt.want)
			require.Nil(t, got)
		})
	}
}

// malleate returns raw with its signature's last base64 character changed to
// one that decodes (leniently) to the same bytes, or "" if there is none.
func malleate(raw string) string {
	i := strings.LastIndex(raw, ".")
	sig := raw[i+1:]
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return ""
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, ch := range alphabet {
		alt := sig[:len(sig)-1] + string(ch)
		if alt == sig {
			continue
		}
		if got, err := base64.RawURLEncoding.DecodeString(alt); err == nil && bytes.Equal(got, want) {
			return raw[:i+1] + alt
		}
	}
	return ""
}

func TestVerifyExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, _, _ := newKeyring(t)

	t.Run("expired before first use", func(t *testing.T) {
		k.now = func() time.Time { return time.Now().Add(-time.Hour) }
		raw, _ := issue(t, k)
		k.now = time.Now
		got, err := k.Verify(ctx, raw)
		require.ErrorIs(t, err, ErrExpired)
		require.Nil(t, got)
	})
	t.Run("within the leeway", func(t *testing.T) {
		k.now = func() time.Time { return time.Now().Add(-15*time.Minute - 10*time.Second) }
		raw, _ := issue(t, k)
		k.now = time.Now
		_, err := k.Verify(ctx, raw)
		require.NoError(t, err, "30s of leeway absorbs clock skew between replicas")
	})
	t.Run("expired after a cached verification", func(t *testing.T) {
		k.now = time.Now
		raw, _ := issue(t, k)
		_, err := k.Verify(ctx, raw)
		require.NoError(t, err)
		k.now = func() time.Time { return time.Now().Add(time.Hour) }
		defer func() { k.now = time.Now }()
		got, err := k.Verify(ctx, raw)
		require.ErrorIs(t, err, ErrExpired)
		require.Nil(t, got)
	})
}

func TestRotateKeepsOldTokensValid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, _, _ := newKeyring(t)
	oldKID := k.ActiveKID()
	oldTok, _ := issue(t, k)

	newKID, err := k.Rotate(ctx)
	require.NoError(t, err)
	require.NotEqual(t, oldKID, newKID)
	require.Equal(t, newKID, k.ActiveKID())

	newTok, c := issue(t, k)
	require.Equal(t, newKID, headerKID(t, newTok))
	got, err := k.Verify(ctx, newTok)
	require.NoError(t, err)
	require.Equal(t, c.Subject, got.Subject)

	_, err = k.Verify(ctx, oldTok)
	require.NoError(t, err, "a token signed before rotation verifies until its key is retired")

	keys := k.Keys()
	require.Len(t, keys, 2)
	require.Equal(t, oldKID, keys[0].KID)
	require.False(t, keys[0].Active)
	require.Equal(t, newKID, keys[1].KID)
	require.True(t, keys[1].Active)
}

func TestRetire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, _, _ := newKeyring(t)
	oldKID := k.ActiveKID()
	oldTok, _ := issue(t, k)
	_, err := k.Verify(ctx, oldTok) // now cached
	require.NoError(t, err)
	uncached, _ := issue(t, k)

	err = k.Retire(ctx, oldKID)
	require.ErrorContains(t, err, "active signing key")

	newKID, err := k.Rotate(ctx)
	require.NoError(t, err)
	require.NoError(t, k.Retire(ctx, oldKID))

	for name, raw := range map[string]string{"cached": oldTok, "never verified": uncached} {
		got, err := k.Verify(ctx, raw)
		require.ErrorIs(t, err, ErrRetiredKey, name)
		require.Nil(t, got, name)
	}

	require.ErrorContains(t, k.Retire(ctx, oldKID), "no unretired key")
	require.ErrorContains(t, k.Retire(ctx, uuid.NewString()), "no unretired key")
	require.ErrorContains(t, k.Retire(ctx, newKID), "active signing key")

	keys := k.Keys()
	require.Len(t, keys, 2)
	require.True(t, keys[0].Retired)
	require.False(t, keys[0].Active)

	fresh, _ := issue(t, k)
	_, err = k.Verify(ctx, fresh)
	require.NoError(t, err)
}

func TestReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k1, _, url := newKeyring(t)
	pool2, err := database.Connect(ctx, url, 2)
	require.NoError(t, err)
	t.Cleanup(pool2.Close)
	k2, err := NewKeyring(ctx, pool2, newSealer(t, 1), Options{Issuer: testIssuer, TTL: 15 * time.Minute})
	require.NoError(t, err)
	require.Equal(t, k1.ActiveKID(), k2.ActiveKID(), "the second replica uses the first key, not a new one")

	before, _ := issue(t, k1)
	_, err = k2.Verify(ctx, before)
	require.NoError(t, err)

	kid, err := k1.Rotate(ctx)
	require.NoError(t, err)
	after, c := issue(t, k1)
	require.Equal(t, kid, headerKID(t, after))

	got, err := k2.Verify(ctx, after)
	require.NoError(t, err, "replica 2 reloads on a kid it has not seen")
	require.Equal(t, c.Subject, got.Subject)
	require.Equal(t, kid, k2.ActiveKID(), "after reloading, replica 2 signs with the new key too")
	fromTwo, _ := issue(t, k2)
	_, err = k1.Verify(ctx, fromTwo)
	require.NoError(t, err)
}

func TestReplicasStartingTogetherCreateOneKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := dbtest.NewPool(t)
	const replicas = 8
	rings := make([]*Keyring, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() {
			rings[i], errs[i] = NewKeyring(ctx, pool, newSealer(t, 1), Options{Issuer: testIssuer, TTL: time.Minute})
		})
	}
	wg.Wait()
	for i := range replicas {
		require.NoError(t, errs[i])
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM kernel.signing_keys`).Scan(&n))
	require.Equal(t, 1, n)
	for _, r := range rings {
		require.Equal(t, rings[0].ActiveKID(), r.ActiveKID())
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	k, _, _ := newKeyring(t)
	first := k.ActiveKID()
	second, err := k.Rotate(ctx)
	require.NoError(t, err)

	type jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	read := func() jwks {
		var set jwks
		require.NoError(t, json.Unmarshal(k.JWKS(), &set))
		return set
	}

	set := read()
	require.Len(t, set.Keys, 2)
	for i, kid := range []string{first, second} {
		jwk := set.Keys[i]
		require.Equal(t, "OKP", jwk["kty"])
		require.Equal(t, "Ed25519", jwk["crv"])
		require.Equal(t, "EdDSA", jwk["alg"])
		require.Equal(t, "sig", jwk["use"])
		require.Equal(t, kid, jwk["kid"])
		x, err := base64.RawURLEncoding.DecodeString(jwk["x"])
		require.NoError(t, err)
		require.Len(t, x, ed25519.PublicKeySize)
		require.NotContains(t, jwk, "d", "the private key never appears in the JWKS")
	}

	// A token verifies with nothing but the published key.
	raw, _ := issue(t, k)
	x, err := base64.RawURLEncoding.DecodeString(set.Keys[1]["x"])
	require.NoError(t, err)
	_, err = jwt.Parse(raw, func(*jwt.Token) (any, error) { return ed25519.PublicKey(x), nil }, jwt.WithValidMethods([]string{"EdDSA"}))
	require.NoError(t, err)

	require.NoError(t, k.Retire(ctx, first))
	set = read()
	require.Len(t, set.Keys, 1)
	require.Equal(t, second, set.Keys[0]["kid"])
	require.NotContains(t, string(k.JWKS()), first)
}

func TestWrongSecretKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool, _ := newKeyring(t)
	k, err := NewKeyring(ctx, pool, newSealer(t, 2), Options{Issuer: testIssuer, TTL: time.Minute})
	require.Nil(t, k)
	require.ErrorIs(t, err, seal.ErrOpen)
	require.ErrorContains(t, err, "wrong EDULURE_SECRET_KEY")
	require.ErrorContains(t, err, "opening signing key")

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM kernel.signing_keys`).Scan(&n))
	require.Equal(t, 1, n, "a wrong key must not make the kernel mint a key of its own")
}

func BenchmarkVerifyWarm(b *testing.B) {
	k, _, _ := newKeyring(b)
	raw, _ := issue(b, k)
	ctx := context.Background()
	_, err := k.Verify(ctx, raw)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCold(b *testing.B) {
	k, _, _ := newKeyring(b)
	raw, _ := issue(b, k)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.verify(raw); err != nil { // skips the cache
			b.Fatal(err)
		}
	}
}

// fuzzKID names a signing key derived from a fixed seed, so that the seed
// corpus token verifies in every fuzz worker process, each of which has its
// own database.
const fuzzKID = "01900000-0000-7000-8000-00000000f022"

var fuzzNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	pool, _ := dbtest.NewPool(f)
	sealer := newSealer(f, 1)
	seed := sha256.Sum256([]byte("edulure fuzz signing key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	_, err := pool.Exec(ctx, `INSERT INTO kernel.signing_keys (kid, algorithm, private_key, public_key) VALUES ($1, 'EdDSA', $2, $3)`,
		fuzzKID, sealer.Seal(seed[:], []byte("signing-key:"+fuzzKID)), []byte(priv.Public().(ed25519.PublicKey)))
	require.NoError(f, err)
	k, err := NewKeyring(ctx, pool, sealer, Options{Issuer: testIssuer, TTL: 15 * time.Minute})
	require.NoError(f, err)
	require.Equal(f, fuzzKID, k.ActiveKID())
	k.now = func() time.Time { return fuzzNow }

	// valid is what Issue makes, with fixed times and IDs.
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testIssuer, Subject: "01900000-0000-7000-8000-000000000001", Audience: jwt.ClaimStrings{Audience},
			IssuedAt: jwt.NewNumericDate(fuzzNow), NotBefore: jwt.NewNumericDate(fuzzNow),
			ExpiresAt: jwt.NewNumericDate(fuzzNow.Add(15 * time.Minute)), ID: "01900000-0000-7000-8000-000000000002",
		},
		TenantID: "01900000-0000-7000-8000-000000000003", SessionID: "01900000-0000-7000-8000-000000000004",
	}
	valid := sign(f, jwt.SigningMethodEdDSA, fuzzKID, priv, c)
	issued, _, err := k.Issue(userClaims())
	require.NoError(f, err)
	genuine := map[string]bool{valid: true, issued: true}
	for raw := range genuine {
		_, err := k.Verify(ctx, raw)
		require.NoError(f, err)
	}

	f.Add(valid) // issued is not added: its ID differs in every worker process
	f.Add("")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("garbage")
	f.Add(strings.Repeat("x.", 3000))
	f.Add(sign(f, jwt.SigningMethodNone, fuzzKID, jwt.UnsafeAllowNoneSignatureType, c))
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzKID, []byte(priv.Public().(ed25519.PublicKey)), c))
	f.Add(valid[:strings.LastIndex(valid, ".")+1])

	f.Fuzz(func(t *testing.T, raw string) {
		got, err := k.Verify(ctx, raw)
		if err != nil {
			require.Nil(t, got)
			return
		}
		require.True(t, genuine[raw], "accepted a token the keyring never issued: %q", raw)
		require.NotNil(t, got)
	})
}
