package wire

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// The rules of a manifest's retention classes (Since: v1.3).
var (
	// RetentionActions are what retention does to expired rows.
	RetentionActions = []string{"delete", "anonymise", "archive"}
	// HoldKind is the form of a hold kind a class declares (beside
	// "person" and "tenant", which every class knows).
	HoldKind = regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}$`)
)

// The built-in hold kinds.
const (
	HoldTenant = "tenant" // suspends every class of the tenant
	HoldPerson = "person" // suspends rows whose subject is the person
)

// MaxRetentionSamples bounds a retention request's sample_limit.
const MaxRetentionSamples = 100

// HoldKinds are the hold kinds a class takes: "tenant", "person" when it
// has a subject, and its hold columns' keys, sorted.
func HoldKinds(c *pluginv1.RetentionClass) []string {
	out := []string{HoldTenant}
	if c.Subject != "" {
		out = append(out, HoldPerson)
	}
	keys := make([]string, 0, len(c.HoldColumns))
	for k := range c.HoldColumns {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return append(out, keys...)
}

// checkRetention applies the rules of retention classes to m.
func checkRetention(m *pluginv1.Manifest, bad func(format string, args ...any)) {
	names := map[string]bool{}
	for _, c := range m.Retention {
		where := fmt.Sprintf("retention class %q", c.Name)
		switch {
		case !DataClassName.MatchString(c.Name):
			bad("%s: a name is lowercase letters, digits and underscores, starting with a letter", where)
		case names[c.Name]:
			bad("%s is declared twice", where)
		}
		names[c.Name] = true
		if !c.Custom || c.Table != "" {
			for what, name := range map[string]string{"table": c.Table, "time column": c.TimeColumn} {
				if !SQLName.MatchString(name) {
					bad("%s: %s %q is not a lowercase SQL name", where, what, name)
				}
			}
			if strings.HasPrefix(c.Table, "edulure_") {
				bad("%s: table %s is the kernel's, not the plugin's", where, c.Table)
			}
		}
		if c.Subject != "" && !SQLName.MatchString(c.Subject) {
			bad("%s: subject %q is not a lowercase SQL name", where, c.Subject)
		}
		for k, col := range c.HoldColumns {
			switch {
			case !HoldKind.MatchString(k) || k == HoldTenant || k == HoldPerson:
				bad("%s: hold kind %q: lowercase letters, digits and underscores, and not %q or %q", where, k, HoldTenant, HoldPerson)
			case !SQLName.MatchString(col):
				bad("%s: hold kind %q: column %q is not a lowercase SQL name", where, k, col)
			}
		}
		if len(c.Actions) == 0 {
			bad("%s: declares no action (%s)", where, strings.Join(RetentionActions, ", "))
		}
		seen := map[string]bool{}
		for _, a := range c.Actions {
			switch {
			case !slices.Contains(RetentionActions, a):
				bad("%s: action %q is not one of %s", where, a, strings.Join(RetentionActions, ", "))
			case seen[a]:
				bad("%s: action %q is listed twice", where, a)
			case a == "archive" && !slices.Contains(m.Capabilities, CapStorage):
				bad("%s: action archive: declare the capability %q, where the archive goes", where, CapStorage)
			}
			seen[a] = true
		}
	}
}

// MaxCutoffAhead is how far past now a retention cutoff may be (clocks
// differ a little); a cutoff later than that would expire data that is
// not old at all, and is refused.
const MaxCutoffAhead = 5 * time.Minute

// CheckRetentionRequest checks a retention request against the class it
// names, as both the kernel and the SDK do before running it.
func CheckRetentionRequest(c *pluginv1.RetentionClass, r *pluginv1.RetentionRequest, now time.Time) error {
	if !slices.Contains(c.Actions, r.Action) {
		return fmt.Errorf("retention class %q: action %q is not one it supports (%s)", c.Name, r.Action, strings.Join(c.Actions, ", "))
	}
	if r.CutoffUnixMs <= 0 {
		return fmt.Errorf("retention class %q: a cutoff is required", c.Name)
	}
	if time.UnixMilli(r.CutoffUnixMs).After(now.Add(MaxCutoffAhead)) {
		return fmt.Errorf("retention class %q: the cutoff %s is in the future", c.Name, time.UnixMilli(r.CutoffUnixMs).UTC().Format(time.RFC3339))
	}
	if r.SampleLimit < 0 || r.SampleLimit > MaxRetentionSamples {
		return fmt.Errorf("sample limit %d: 0 to %d", r.SampleLimit, MaxRetentionSamples)
	}
	kinds := HoldKinds(c)
	for _, h := range r.Holds {
		if !slices.Contains(kinds, h.Kind) {
			return fmt.Errorf("retention class %q: hold kind %q is not one it takes (%s)", c.Name, h.Kind, strings.Join(kinds, ", "))
		}
		if h.Kind != HoldTenant && (h.Id == "" || len(h.Id) > 200 || strings.ContainsRune(h.Id, 0)) {
			return fmt.Errorf("retention class %q: a %s hold needs an ID (at most 200 characters)", c.Name, h.Kind)
		}
	}
	return nil
}

// MaxSignPayload bounds the payload of a Sign call.
const MaxSignPayload = 1 << 20

// SignPurpose is the form of a signature's purpose after the plugin's
// name and dot.
var SignPurpose = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,99}$`)

// CheckSignRequest checks a Sign call of plugin: the purpose starts with
// the plugin's name and a dot, the payload is at most MaxSignPayload.
func CheckSignRequest(plugin, purpose string, payload []byte) error {
	rest, ok := strings.CutPrefix(purpose, plugin+".")
	if !ok || !SignPurpose.MatchString(rest) {
		return fmt.Errorf("purpose %q must be %q followed by lowercase letters, digits, '.', '_' or '-'", purpose, plugin+".")
	}
	if len(payload) > MaxSignPayload {
		return fmt.Errorf("payload of %d bytes: at most %d", len(payload), MaxSignPayload)
	}
	return nil
}
