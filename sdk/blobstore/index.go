package blobstore

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edulure/edulure/sdk"
)

// Entry is what an Index records of one object.
type Entry struct {
	Key         string // the bucket key
	Plugin      string
	Tenant      string // "" for the platform scope
	Size        int64
	ContentType string
	SHA256      string // lowercase hex
	Modified    time.Time
}

// ErrExists is what Index.Commit returns when ifNotExists is set and the
// key has an entry.
var ErrExists = errors.New("an object with this key exists")

// Index records the objects of every plugin and the bytes each plugin's
// objects take. Implementations: the kernel's (Postgres) and
// MemoryIndex (sdk/plugintest). Store holds the rules; an Index makes
// each change atomic.
type Index interface {
	// Lookup returns the entry at key, or an error wrapping sdk.ErrNotFound.
	Lookup(ctx context.Context, key string) (Entry, error)
	// List returns up to limit entries whose keys start with prefix and
	// sort after after (byte order; "" for the start), in key order.
	List(ctx context.Context, prefix, after string, limit int) ([]Entry, error)
	// Usage returns the bytes plugin's objects take.
	Usage(ctx context.Context, plugin string) (int64, error)
	// Commit records e in one atomic step, serialised with the plugin's
	// other commits and removals: it fails with ErrExists if ifNotExists
	// and key has an entry; calls fits with the bytes the plugin's other
	// objects take (without the entry e replaces) and fails with its
	// error; calls publish, which makes the object visible in the bucket,
	// and fails with its error; and only then records e (replacing an
	// entry at the same key) and the plugin's new usage. On failure
	// nothing is recorded.
	Commit(ctx context.Context, e Entry, ifNotExists bool, fits func(others int64) error, publish func() error) error
	// Remove deletes the entry at key and calls remove (which deletes the
	// object from the bucket) in one atomic step; an error wrapping
	// sdk.ErrNotFound when there is none.
	Remove(ctx context.Context, key string, remove func() error) error
}

// MemoryIndex is an Index in memory, for tests and sdk/plugintest.
type MemoryIndex struct {
	mu      sync.Mutex
	entries map[string]Entry
	usage   map[string]int64
}

var _ Index = (*MemoryIndex)(nil)

// NewMemoryIndex returns an empty index.
func NewMemoryIndex() *MemoryIndex {
	return &MemoryIndex{entries: map[string]Entry{}, usage: map[string]int64{}}
}

func notFound(key string) error {
	return &sdk.Error{Kind: sdk.ErrNotFound, Code: "object-not-found", Detail: "no object " + quote(key)}
}

// Lookup implements Index.
func (m *MemoryIndex) Lookup(_ context.Context, key string) (Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return Entry{}, notFound(key)
	}
	return e, nil
}

// List implements Index.
func (m *MemoryIndex) List(_ context.Context, prefix, after string, limit int) ([]Entry, error) {
	m.mu.Lock()
	var out []Entry
	for k, e := range m.entries {
		if strings.HasPrefix(k, prefix) && k > after {
			out = append(out, e)
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Usage implements Index.
func (m *MemoryIndex) Usage(_ context.Context, plugin string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.usage[plugin], nil
}

// Commit implements Index. The lock is held while publish runs, as the
// kernel holds the plugin's usage row.
func (m *MemoryIndex) Commit(_ context.Context, e Entry, ifNotExists bool, fits func(int64) error, publish func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, exists := m.entries[e.Key]
	if exists && ifNotExists {
		return ErrExists
	}
	others := m.usage[e.Plugin]
	if exists {
		others -= old.Size
	}
	if err := fits(others); err != nil {
		return err
	}
	if err := publish(); err != nil {
		return err
	}
	m.entries[e.Key] = e
	m.usage[e.Plugin] = others + e.Size
	return nil
}

// Remove implements Index.
func (m *MemoryIndex) Remove(_ context.Context, key string, remove func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return notFound(key)
	}
	if err := remove(); err != nil {
		return err
	}
	delete(m.entries, key)
	m.usage[e.Plugin] -= e.Size
	return nil
}
