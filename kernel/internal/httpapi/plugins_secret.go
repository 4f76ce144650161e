package httpapi

import (
	"bytes"
	"encoding/json"
	"sort"

	"github.com/google/uuid"

	"github.com/edulure/edulure/kernel/internal/supervisor"
)

// secretChange is what a PUT of a plugin's settings does with its secret
// settings (the configuration's writeOnly properties, Manifest.Secrets).
type secretChange struct {
	config    json.RawMessage            // the settings to store, none of them secret
	effective json.RawMessage            // every setting in force after the change, secrets included: what the schema checks
	secrets   map[string]json.RawMessage // by name: the new value, or nil to clear it
	set       []string                   // names given a value, for the audit entry
	cleared   []string                   // names cleared
}

// splitSecrets takes the secret settings out of cfg, the configuration a
// PUT sends (or the one stored, when it sends none): absent, a secret keeps
// its value; a value replaces it; null clears it. Secrets stored under
// names the plugin no longer declares secret are cleared.
func (s *Server) splitSecrets(tenant uuid.UUID, plugin string, m *supervisor.Manifest, cur supervisor.Setting, cfg json.RawMessage) (secretChange, error) {
	ch := secretChange{config: cfg, effective: cfg, secrets: map[string]json.RawMessage{}, set: []string{}, cleared: []string{}}
	declared := map[string]bool{}
	for _, name := range m.Secrets {
		declared[name] = true
	}
	for name := range cur.Secrets {
		if !declared[name] {
			ch.secrets[name] = nil
		}
	}
	if len(m.Secrets) == 0 {
		return ch, nil
	}
	var given map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &given); err != nil || given == nil {
		return ch, nil // not an object: the schema check says so
	}
	kept := map[string]supervisor.Secret{}
	removed := false
	for _, name := range m.Secrets {
		v, ok := given[name]
		switch {
		case !ok:
			if sec, ok := cur.Secrets[name]; ok {
				kept[name] = sec
			}
			continue
		case string(bytes.TrimSpace(v)) == "null":
			ch.secrets[name] = nil
			if _, was := cur.Secrets[name]; was {
				ch.cleared = append(ch.cleared, name)
			}
		default:
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return ch, err // unreachable: it was decoded
			}
			ch.secrets[name] = buf.Bytes()
			ch.set = append(ch.set, name)
		}
		delete(given, name)
		removed = true
	}
	if removed {
		b, err := json.Marshal(given)
		if err != nil {
			return ch, err
		}
		ch.config = b
	}
	// What the schema checks: the settings with the secrets kept and the
	// new ones, so that their types and limits hold too.
	eff, err := s.Plugins.Enablement.Open(tenant, plugin, supervisor.Setting{Config: ch.config, Secrets: kept}, m.Secrets)
	if err != nil {
		return ch, err
	}
	if len(ch.set) > 0 {
		all := map[string]json.RawMessage{}
		if err := json.Unmarshal(eff, &all); err != nil {
			return ch, err
		}
		for _, name := range ch.set {
			all[name] = ch.secrets[name]
		}
		if eff, err = json.Marshal(all); err != nil {
			return ch, err
		}
	}
	ch.effective = eff
	sort.Strings(ch.set)
	sort.Strings(ch.cleared)
	return ch, nil
}

// withoutSettings is cfg without the named settings (a configuration
// stored before a plugin upgrade made one of them secret).
func withoutSettings(cfg json.RawMessage, names []string) json.RawMessage {
	if len(names) == 0 {
		return cfg
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &obj); err != nil {
		return cfg
	}
	removed := false
	for _, name := range names {
		if _, ok := obj[name]; ok {
			delete(obj, name)
			removed = true
		}
	}
	if !removed {
		return cfg
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}
