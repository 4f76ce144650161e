package outbox

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/kernel/internal/seal"
)

// Secret fields of kernel events (a password-reset or invitation token) are
// meant for the recipient's inbox, not for everyone who can read the event
// log. Add seals them, so the outbox and the event log (kernel.events, shown
// to institution admins and kept for replay) hold only ciphertext; Open
// unseals them for delivery to a subscriber or an event-triggered job.

// SealedPrefix starts a sealed field's value: "sealed:" and the base64url
// (no padding) of AES-256-GCM's nonce and ciphertext under
// EDULURE_SECRET_KEY, bound to the event's ID and the field's name.
const SealedPrefix = "sealed:"

// secretFields lists each kernel event type's secret fields: top-level
// strings. A type whose schema has a field named like a token or secret
// must be listed here (TestSecretFieldsListed).
var secretFields = map[string][]string{
	PasswordResetRequested: {"token"},
	VerificationRequested:  {"token"},
	InvitationCreated:      {"token"},
}

// SecretFields are the names of the secret fields of a kernel event type.
func SecretFields(typ string) []string { return secretFields[typ] }

func fieldAAD(eventID, field string) []byte { return []byte("event:" + eventID + ":" + field) }

// sealData replaces the secret string fields of data (a JSON object) with
// their sealed form.
func sealData(s *seal.Sealer, eventID, typ string, data []byte) ([]byte, error) {
	fields := secretFields[typ]
	if len(fields) == 0 {
		return data, nil
	}
	if s == nil {
		return nil, fmt.Errorf("event %s carries secrets (%s) and needs a sealer", typ, strings.Join(fields, ", "))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("event %s with secrets must be a JSON object: %w", typ, err)
	}
	for _, f := range fields {
		raw, ok := m[f]
		if !ok {
			continue
		}
		var plain string
		if err := json.Unmarshal(raw, &plain); err != nil {
			return nil, fmt.Errorf("secret field %s of event %s must be a string: %w", f, typ, err)
		}
		sealed := SealedPrefix + base64.RawURLEncoding.EncodeToString(s.Seal([]byte(plain), fieldAAD(eventID, f)))
		m[f], _ = json.Marshal(sealed)
	}
	return json.Marshal(m)
}

// Open returns an event's data with its sealed fields opened, for the
// subscriber or job that receives it. Data without sealed fields (a
// plugin's event, a kernel event without secrets) comes back as it is.
func Open(s *seal.Sealer, eventID, typ string, data []byte) ([]byte, error) {
	fields := secretFields[typ]
	if len(fields) == 0 || !strings.Contains(string(data), SealedPrefix) {
		return data, nil
	}
	if s == nil {
		return nil, fmt.Errorf("event %s has sealed fields and no sealer to open them", eventID)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("event %s: %w", eventID, err)
	}
	for _, f := range fields {
		var v string
		if json.Unmarshal(m[f], &v) != nil || !strings.HasPrefix(v, SealedPrefix) {
			continue
		}
		ct, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(v, SealedPrefix))
		if err != nil {
			return nil, fmt.Errorf("field %s of event %s: %w", f, eventID, seal.ErrOpen)
		}
		plain, err := s.Open(ct, fieldAAD(eventID, f))
		if err != nil {
			return nil, fmt.Errorf("field %s of event %s: %w", f, eventID, err)
		}
		m[f], _ = json.Marshal(string(plain))
	}
	return json.Marshal(m)
}

// SealStored seals the secret fields that events written before sealing
// keep in the clear, in the outbox and the event log, and returns how many
// events it sealed. The kernel runs it at start; it is cheap when there are
// none (an index on the event log's type).
func SealStored(ctx context.Context, pool *pgxpool.Pool, s *seal.Sealer) (int, error) {
	types := make([]string, 0, len(secretFields))
	for t := range secretFields {
		types = append(types, t)
	}
	n := 0
	for _, table := range []string{"kernel.outbox", "kernel.events"} {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, "SELECT id::text, type, data FROM "+table+" WHERE type = ANY($1) FOR UPDATE", types)
			if err != nil {
				return err
			}
			type row struct {
				id, typ string
				data    []byte
			}
			all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				return x, r.Scan(&x.id, &x.typ, &x.data)
			})
			if err != nil {
				return err
			}
			for _, r := range all {
				clear, err := inClear(r.typ, r.data)
				if err != nil || !clear {
					continue
				}
				sealed, err := sealData(s, r.id, r.typ, r.data)
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "UPDATE "+table+" SET data = $2 WHERE id = $1::uuid", r.id, sealed); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("sealing secrets kept in %s: %w", table, err)
		}
	}
	return n, nil
}

// inClear reports whether an event holds a secret field not yet sealed.
func inClear(typ string, data []byte) (bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return false, err
	}
	for _, f := range secretFields[typ] {
		var v string
		if json.Unmarshal(m[f], &v) == nil && !strings.HasPrefix(v, SealedPrefix) {
			return true, nil
		}
	}
	return false, nil
}
