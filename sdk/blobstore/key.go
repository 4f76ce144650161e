package blobstore

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/wire"
)

// The layout of the bucket. Every plugin key lives under its plugin's and
// scope's prefix; the kernel keeps KernelPrefix for its own objects (export
// bundles), which no plugin key can reach.
//
//	plugins/<plugin>/tenants/<tenant-uuid>/<key>
//	plugins/<plugin>/platform/<key>
//	kernel/...
const (
	PluginsPrefix = "plugins/"
	KernelPrefix  = "kernel/"
)

// Limits on keys, in bytes.
const (
	// MaxKeyBytes is the longest key a plugin may name (its prefix comes on
	// top: at most 86 bytes, well within S3's 1024).
	MaxKeyBytes = 512
	// MaxSegmentBytes is the longest part between slashes (file systems
	// allow 255 per name).
	MaxSegmentBytes = 200
)

// reservedFirst are first segments a plugin key may not start with: they
// are how the bucket's own prefixes begin, and a key that starts with one
// is a key copied from a bucket path, or an attempt at another scope.
var reservedFirst = []string{"plugins", "kernel", "tenants", "platform"}

// Scope is whose objects a call is about: one plugin's objects of one
// institution, or of the platform.
type Scope struct {
	Plugin   string
	Tenant   string // a canonical UUID; "" for the platform scope
	Platform bool
}

// TenantScope is plugin's scope for one institution. The tenant ID must be
// a UUID; its canonical form names the prefix, so that no two spellings of
// one ID reach different objects.
func TenantScope(plugin, tenant string) (Scope, error) {
	if !wire.PluginName.MatchString(plugin) {
		return Scope{}, sdk.Errorf(sdk.ErrInvalid, "plugin name %q is not valid", plugin)
	}
	id, err := uuid.Parse(tenant)
	if err != nil || len(tenant) != 36 {
		return Scope{}, sdk.Errorf(sdk.ErrInvalid, "tenant ID %q is not a UUID: storage needs the institution of a request, event or tenant job", tenant)
	}
	return Scope{Plugin: plugin, Tenant: id.String()}, nil
}

// PlatformScope is plugin's scope for platform work.
func PlatformScope(plugin string) (Scope, error) {
	if !wire.PluginName.MatchString(plugin) {
		return Scope{}, sdk.Errorf(sdk.ErrInvalid, "plugin name %q is not valid", plugin)
	}
	return Scope{Plugin: plugin, Platform: true}, nil
}

// Prefix is the bucket prefix of the scope, ending in "/".
func (s Scope) Prefix() string {
	if s.Platform {
		return PluginsPrefix + s.Plugin + "/platform/"
	}
	return PluginsPrefix + s.Plugin + "/tenants/" + s.Tenant + "/"
}

// Key is the bucket key of a plugin's key in the scope, or an ErrInvalid
// error saying why the key is refused (CheckKey).
func (s Scope) Key(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return s.Prefix() + key, nil
}

// String names the scope in messages.
func (s Scope) String() string {
	if s.Platform {
		return "plugin " + s.Plugin + ", platform"
	}
	return "plugin " + s.Plugin + ", institution " + s.Tenant
}

// CheckKey refuses a key that is empty, longer than MaxKeyBytes, not UTF-8,
// holds a control character (NUL among them) or a backslash, is absolute
// ("/x"), has an empty, "." or ".." part, a part longer than
// MaxSegmentBytes, ends in ".attrs" (the file driver's own files), or
// starts with a folder named like the bucket's prefixes ("plugins/",
// "kernel/", "tenants/", "platform/").
func CheckKey(key string) error {
	if key == "" {
		return &sdk.Error{Kind: sdk.ErrInvalid, Code: "invalid-object-key", Detail: "an object key is required"}
	}
	if err := checkPath(key, "key"); err != nil {
		return err
	}
	if strings.HasSuffix(key, "/") {
		return refused(key, "key", "ends with '/': a key names an object, not a folder")
	}
	return nil
}

// CheckPrefix refuses a list prefix by the rules of CheckKey, except that
// it may be empty, end with "/" and end within a part.
func CheckPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return checkPath(prefix, "prefix")
}

func checkPath(p, what string) error {
	if len(p) > MaxKeyBytes {
		return &sdk.Error{Kind: sdk.ErrInvalid, Code: "invalid-object-key", Detail: fmt.Sprintf("%s is %d bytes long; at most %d", what, len(p), MaxKeyBytes)}
	}
	if !utf8.ValidString(p) {
		return refused(p, what, "is not valid UTF-8")
	}
	for _, r := range p {
		switch {
		case r < 0x20 || r == 0x7f:
			return refused(p, what, "holds a control character")
		case r == '\\':
			return refused(p, what, `holds a backslash: separate parts with "/"`)
		}
	}
	if strings.HasPrefix(p, "/") {
		return refused(p, what, "is absolute: keys are relative to the plugin's storage")
	}
	parts := strings.Split(p, "/")
	for i, part := range parts {
		last := i == len(parts)-1
		switch {
		case part == "" && last: // a trailing "/" (CheckKey refuses it for keys)
		case part == "":
			return refused(p, what, `has an empty part ("//")`)
		case part == "." || part == "..":
			return refused(p, what, `has a "." or ".." part`)
		case len(part) > MaxSegmentBytes:
			return refused(p, what, "has a part longer than 200 bytes")
		}
	}
	for _, r := range reservedFirst {
		if parts[0] == r && len(parts) > 1 {
			return refused(p, what, "starts with \""+r+"/\", which names the bucket's own prefixes (another plugin's or institution's objects are out of reach)")
		}
	}
	if strings.HasSuffix(p, ".attrs") {
		return refused(p, what, `ends in ".attrs", which the file store keeps for itself`)
	}
	return nil
}

func refused(p, what, why string) error {
	return &sdk.Error{Kind: sdk.ErrInvalid, Code: "invalid-object-key", Detail: what + " " + quote(p) + " " + why}
}

// quote shows a refused key in a message: quoted, escaped and cut short.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return strconv.Quote(s)
}

// ParseKey splits a plugin object's bucket key into its scope and the key
// the plugin named, checking both; ok is false for any other key (the
// kernel's own, or one no plugin could have made).
func ParseKey(full string) (Scope, string, bool) {
	rest, ok := strings.CutPrefix(full, PluginsPrefix)
	if !ok {
		return Scope{}, "", false
	}
	plugin, rest, ok := strings.Cut(rest, "/")
	if !ok || !wire.PluginName.MatchString(plugin) {
		return Scope{}, "", false
	}
	var s Scope
	var err error
	switch kind, rest2, _ := strings.Cut(rest, "/"); kind {
	case "platform":
		s, err = PlatformScope(plugin)
		rest = rest2
	case "tenants":
		var tenant string
		tenant, rest, _ = strings.Cut(rest2, "/")
		s, err = TenantScope(plugin, tenant)
		if err == nil && s.Tenant != tenant {
			return Scope{}, "", false // not the canonical spelling: not a key the kernel made
		}
	default:
		return Scope{}, "", false
	}
	if err != nil || CheckKey(rest) != nil {
		return Scope{}, "", false
	}
	return s, rest, true
}
