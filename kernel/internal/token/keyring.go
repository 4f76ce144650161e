package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/sdk"
)

// Audience is the aud claim of every access token.
const Audience = "edulure-api"

// Claims are an access token's claims.
type Claims struct {
	jwt.RegisteredClaims
	TenantID  string `json:"tid,omitempty"` // the one tenant this token acts in
	SessionID string `json:"sid"`           // refresh-token family
	Operator  bool   `json:"op,omitempty"`  // platform operator
	MFA       bool   `json:"mfa,omitempty"` // second factor given at login
}

// Errors returned by Verify, each a distinct reason a client can act on.
var (
	ErrMalformed  = errors.New("token is malformed")
	ErrExpired    = errors.New("token has expired")
	ErrSignature  = errors.New("token signature is invalid")
	ErrUnknownKey = errors.New("token was signed by an unknown key")
	ErrRetiredKey = errors.New("token was signed by a retired key")
	ErrClaims     = errors.New("token claims are invalid")
)

type key struct {
	kid     string
	priv    ed25519.PrivateKey
	pub     ed25519.PublicKey
	created time.Time
	retired bool
}

// Keyring holds the signing keys. It is safe for concurrent use.
type Keyring struct {
	pool   *pgxpool.Pool
	sealer *seal.Sealer
	issuer string
	ttl    time.Duration

	mu      sync.RWMutex
	keys    map[string]*key
	active  *key
	jwks    []byte
	parser  *jwt.Parser
	cache   *expirable.LRU[string, *Claims]
	reloads atomic.Int64 // unix nanos of the last reload on an unknown kid
	now     func() time.Time
}

// Options configure a Keyring.
type Options struct {
	Issuer    string
	TTL       time.Duration
	CacheSize int // verified tokens kept; default 100,000
}

// NewKeyring loads the keys, creating the first one if the table is empty.
func NewKeyring(ctx context.Context, pool *pgxpool.Pool, sealer *seal.Sealer, opts Options) (*Keyring, error) {
	if opts.CacheSize == 0 {
		opts.CacheSize = 100_000
	}
	k := &Keyring{
		pool: pool, sealer: sealer, issuer: opts.Issuer, ttl: opts.TTL, now: time.Now,
		cache: expirable.NewLRU[string, *Claims](opts.CacheSize, nil, opts.TTL),
	}
	k.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(opts.Issuer),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
		jwt.WithStrictDecoding(), // one token, one spelling: no spare base64 bits
		jwt.WithTimeFunc(func() time.Time { return k.now() }),
	)
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	if k.activeKey() == nil {
		if _, err := k.rotate(ctx, true); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Rotate creates a new signing key, which signs from now on. Older keys keep
// verifying until retired. It takes a lock so that replicas starting
// together create one first key, not several.
func (k *Keyring) Rotate(ctx context.Context) (string, error) {
	return k.rotate(ctx, false)
}

// rotate creates a key; with first set, only if no unretired key exists
// once the lock is held.
func (k *Keyring) rotate(ctx context.Context, first bool) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	kid := uuid.Must(uuid.NewV7()).String()
	tx, err := k.pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7312002)"); err != nil {
		return "", err
	}
	if first {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM kernel.signing_keys WHERE retired_at IS NULL)`).Scan(&exists); err != nil {
			return "", err
		}
		if exists { // another replica created it while we waited for the lock
			if err := tx.Rollback(ctx); err != nil {
				return "", err
			}
			return "", k.Reload(ctx)
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO kernel.signing_keys (kid, algorithm, private_key, public_key) VALUES ($1, 'EdDSA', $2, $3)`,
		kid, k.sealer.Seal(priv.Seed(), []byte("signing-key:"+kid)), []byte(pub))
	if err != nil {
		return "", fmt.Errorf("storing signing key: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify('edulure_changes', 'keys:*')"); err != nil {
		return "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", err
	}
	return kid, k.Reload(ctx)
}

// Retire stops a key from verifying. The active key cannot be retired:
// rotate first, and retire the old key once tokens it signed have expired.
func (k *Keyring) Retire(ctx context.Context, kid string) error {
	if a := k.activeKey(); a != nil && a.kid == kid {
		return fmt.Errorf("key %s is the active signing key: rotate before retiring it", kid)
	}
	tag, err := k.pool.Exec(ctx, `UPDATE kernel.signing_keys SET retired_at = now() WHERE kid = $1 AND retired_at IS NULL`, kid)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("no unretired key %s", kid)
	}
	if _, err := k.pool.Exec(ctx, "SELECT pg_notify('edulure_changes', 'keys:*')"); err != nil {
		return err
	}
	return k.Reload(ctx)
}

// Reload reads the keys from the database. Cached verifications are dropped
// when a key is retired.
func (k *Keyring) Reload(ctx context.Context) error {
	rows, err := k.pool.Query(ctx, `SELECT kid, private_key, public_key, created_at, retired_at IS NOT NULL FROM kernel.signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	defer rows.Close()
	keys := map[string]*key{}
	var active *key
	for rows.Next() {
		var kid string
		var sealed, pub []byte
		var created time.Time
		var retired bool
		if err := rows.Scan(&kid, &sealed, &pub, &created, &retired); err != nil {
			return err
		}
		seed, err := k.sealer.Open(sealed, []byte("signing-key:"+kid))
		if err != nil {
			return fmt.Errorf("opening signing key %s: %w", kid, err)
		}
		kk := &key{kid: kid, priv: ed25519.NewKeyFromSeed(seed), pub: ed25519.PublicKey(pub), created: created, retired: retired}
		keys[kid] = kk
		if !retired {
			active = kk // rows are ordered: the newest unretired key wins
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	jwks, err := buildJWKS(keys)
	if err != nil {
		return err
	}
	k.mu.Lock()
	retiredNow := false
	for kid, old := range k.keys {
		if nk, ok := keys[kid]; ok && nk.retired && !old.retired {
			retiredNow = true
		}
	}
	k.keys, k.active, k.jwks = keys, active, jwks
	k.mu.Unlock()
	if retiredNow {
		k.cache.Purge()
	}
	return nil
}

func (k *Keyring) activeKey() *key {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.active
}

// ActiveKID returns the key ID that signs new tokens.
func (k *Keyring) ActiveKID() string {
	if a := k.activeKey(); a != nil {
		return a.kid
	}
	return ""
}

// Issue signs an access token for the claims, filling in issuer, audience,
// issue and expiry times and a token ID. It returns the token and its expiry.
func (k *Keyring) Issue(c Claims) (string, time.Time, error) {
	a := k.activeKey()
	if a == nil {
		return "", time.Time{}, errors.New("no active signing key")
	}
	now := k.now()
	exp := now.Add(k.ttl)
	c.Issuer = k.issuer
	c.Audience = jwt.ClaimStrings{Audience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(exp)
	c.ID = uuid.Must(uuid.NewV7()).String()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &c)
	t.Header["kid"] = a.kid
	s, err := t.SignedString(a.priv)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("signing token: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's signature and claims and returns its claims. A
// token already verified is answered from a cache until it expires.
func (k *Keyring) Verify(ctx context.Context, raw string) (*Claims, error) {
	if c, ok := k.cache.Get(raw); ok {
		if k.now().Before(c.ExpiresAt.Time) {
			return c, nil
		}
		k.cache.Remove(raw)
		return nil, ErrExpired
	}
	c, err := k.verify(raw)
	if errors.Is(err, ErrUnknownKey) && k.mayReload() {
		// Another replica may have rotated a moment ago.
		if rerr := k.Reload(ctx); rerr == nil {
			c, err = k.verify(raw)
		}
	}
	if err != nil {
		return nil, err
	}
	k.cache.Add(raw, c)
	return c, nil
}

func (k *Keyring) mayReload() bool {
	last := k.reloads.Load()
	now := time.Now().UnixNano()
	return now-last > int64(5*time.Second) && k.reloads.CompareAndSwap(last, now)
}

func (k *Keyring) verify(raw string) (*Claims, error) {
	if len(raw) > 4096 {
		return nil, ErrMalformed
	}
	var c Claims
	_, err := k.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != "JWT" {
			return nil, fmt.Errorf("%w: typ %q is not an access token's", ErrMalformed, typ)
		}
		kid, _ := t.Header["kid"].(string)
		k.mu.RLock()
		kk, ok := k.keys[kid]
		k.mu.RUnlock()
		if !ok {
			return nil, ErrUnknownKey
		}
		if kk.retired {
			return nil, ErrRetiredKey
		}
		return kk.pub, nil
	})
	if err != nil {
		switch {
		case errors.Is(err, ErrMalformed):
			return nil, ErrMalformed
		case errors.Is(err, ErrUnknownKey):
			return nil, ErrUnknownKey
		case errors.Is(err, ErrRetiredKey):
			return nil, ErrRetiredKey
		case errors.Is(err, jwt.ErrTokenExpired):
			return nil, ErrExpired
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			return nil, ErrSignature
		case errors.Is(err, jwt.ErrTokenMalformed):
			return nil, ErrMalformed
		default:
			return nil, fmt.Errorf("%w: %v", ErrClaims, err)
		}
	}
	if c.Subject == "" || c.SessionID == "" {
		return nil, fmt.Errorf("%w: sub and sid are required", ErrClaims)
	}
	if _, err := uuid.Parse(c.Subject); err != nil {
		return nil, fmt.Errorf("%w: sub is not a user ID", ErrClaims)
	}
	if c.TenantID != "" {
		if _, err := uuid.Parse(c.TenantID); err != nil {
			return nil, fmt.Errorf("%w: tid is not a tenant ID", ErrClaims)
		}
	}
	return &c, nil
}

// JWKS returns the JSON Web Key Set of every unretired key.
func (k *Keyring) JWKS() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.jwks
}

// KeyInfo describes a key for operators.
type KeyInfo struct {
	KID       string    `json:"kid"`
	CreatedAt time.Time `json:"created_at"`
	Retired   bool      `json:"retired"`
	Active    bool      `json:"active"`
}

// Keys lists the keys, oldest first.
func (k *Keyring) Keys() []KeyInfo {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]KeyInfo, 0, len(k.keys))
	for _, kk := range k.keys {
		out = append(out, KeyInfo{KID: kk.kid, CreatedAt: kk.created, Retired: kk.retired, Active: k.active == kk})
	}
	sortKeys(out)
	return out
}

// JWKS is the JSON Web Key Set of /.well-known/jwks.json (RFC 7517): the
// public keys of every unretired signing key.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWK is one public key: an Ed25519 key for EdDSA (RFC 8037).
type JWK struct {
	Kty string `json:"kty" enum:"OKP" doc:"Key type: an octet key pair."`
	Crv string `json:"crv" enum:"Ed25519"`
	X   string `json:"x" doc:"The public key, base64url without padding."`
	Kid string `json:"kid" doc:"The key's ID, as the kid header of the tokens it signs."`
	Use string `json:"use" enum:"sig"`
	Alg string `json:"alg" enum:"EdDSA"`
}

func buildJWKS(keys map[string]*key) ([]byte, error) {
	set := JWKS{Keys: []JWK{}}
	infos := make([]KeyInfo, 0, len(keys))
	for _, kk := range keys {
		if !kk.retired {
			infos = append(infos, KeyInfo{KID: kk.kid, CreatedAt: kk.created})
		}
	}
	sortKeys(infos)
	for _, i := range infos {
		set.Keys = append(set.Keys, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(keys[i.KID].pub), Kid: i.KID, Use: "sig", Alg: "EdDSA"})
	}
	return json.Marshal(set)
}

func sortKeys(ks []KeyInfo) {
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].CreatedAt.Equal(ks[j].CreatedAt) {
			return ks[i].CreatedAt.Before(ks[j].CreatedAt)
		}
		return ks[i].KID < ks[j].KID
	})
}

// SignPayload signs a payload for a plugin (the Host service Sign) with the
// active key: a compact JWS of typ sdk.SignatureType whose claims hold the
// payload's SHA-256, the purpose and the plugin. Its typ is never "JWT",
// and Verify refuses any token whose typ is not "JWT", so a signature
// cannot pass as an access token.
func (k *Keyring) SignPayload(plugin, purpose string, payload []byte) (kid, jws string, err error) {
	a := k.activeKey()
	if a == nil {
		return "", "", errors.New("no active signing key")
	}
	sum := sha256.Sum256(payload)
	jws, err = sdk.SignatureJWS(a.priv, a.kid, sdk.SignatureClaims{
		Issuer: k.issuer, Plugin: plugin, Purpose: purpose, SHA256: hex.EncodeToString(sum[:]), IssuedAt: k.now().Unix(),
	})
	return a.kid, jws, err
}

// NoteKeyName is the name of the signed-note key (golang.org/x/mod/sumdb/note)
// of the signing key kid: the audit checkpoints are notes signed with it.
func NoteKeyName(kid string) string { return "edulure-audit-" + kid }

// noteSigner signs notes with one of the keyring's keys.
type noteSigner struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
}

func (s noteSigner) Name() string                    { return s.name }
func (s noteSigner) KeyHash() uint32                 { return s.hash }
func (s noteSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// NoteVerifierKey is the verifier key (note.NewVerifier's argument) of the
// signing key kid, as an auditor writes it from the published JWKS.
func NoteVerifierKey(kid string, pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(NoteKeyName(kid), pub)
}

// NoteSigner signs notes with the active key; it returns the key's ID and
// verifier key too.
func (k *Keyring) NoteSigner() (note.Signer, string, string, error) {
	a := k.activeKey()
	if a == nil {
		return nil, "", "", errors.New("no active signing key")
	}
	vkey, err := NoteVerifierKey(a.kid, a.pub)
	if err != nil {
		return nil, "", "", err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, "", "", err
	}
	return noteSigner{name: v.Name(), hash: v.KeyHash(), priv: a.priv}, a.kid, vkey, nil
}

// NoteVerifiers verifies notes signed by any of the keyring's keys,
// retired ones too (a checkpoint outlives its key's use).
func (k *Keyring) NoteVerifiers() (note.Verifiers, map[string]string, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var vs []note.Verifier
	vkeys := map[string]string{}
	for kid, kk := range k.keys {
		vkey, err := NoteVerifierKey(kid, kk.pub)
		if err != nil {
			return nil, nil, err
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, nil, err
		}
		vs = append(vs, v)
		vkeys[kid] = vkey
	}
	return note.VerifierList(vs...), vkeys, nil
}
