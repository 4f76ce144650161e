package httpapi

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/kernel/internal/tenancy"
)

// changesChannel carries "topic:arg" notifications sent by transactions that
// change cached data; every replica listens and drops or reloads its copy.
const changesChannel = "edulure_changes"

// listenChanges LISTENs on the changes channel until ctx ends, reconnecting
// with backoff. After each (re)connect it reloads everything, since changes
// made while it was away were not heard.
func (s *Server) listenChanges(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.Logger.Warn("change listener disconnected; reconnecting", "error", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (s *Server) listenOnce(ctx context.Context) error {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return err
	}
	s.reloadAll(ctx)
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			conn.Conn().Close(context.Background()) //nolint:errcheck // do not return a listening conn to the pool
			return err
		}
		s.applyChange(ctx, n.Payload)
	}
}

func (s *Server) reloadAll(ctx context.Context) {
	s.roles.purge()
	s.Plugins.Enablement.DropAll()
	if err := s.loadTenantRoles(ctx); err != nil {
		s.Logger.Error("reloading tenant roles", "error", err)
	}
	if err := s.Keyring.Reload(ctx); err != nil {
		s.Logger.Error("reloading signing keys", "error", err)
	}
}

// applyChange handles one notification; it is also called directly after a
// local commit so that the next request on this replica sees the change.
func (s *Server) applyChange(ctx context.Context, payload string) {
	topic, arg, _ := strings.Cut(payload, ":")
	switch topic {
	case "tenant": // an institution is being offboarded: nobody is its member any more
		s.roles.purge()
	case tenancy.TopicMembership:
		t, u, _ := strings.Cut(arg, ":")
		tid, err1 := uuid.Parse(t)
		uid, err2 := uuid.Parse(u)
		if err1 == nil && err2 == nil {
			s.roles.drop(tid, uid)
		}
	case tenancy.TopicRoles:
		if tid, err := uuid.Parse(arg); err == nil {
			if err := s.loadRolesOf(ctx, tid); err != nil {
				s.Logger.Error("reloading roles of tenant", "tenant", tid, "error", err)
			}
		}
	case supervisor.TopicPlugins:
		if tid, err := uuid.Parse(arg); err == nil {
			s.Plugins.Enablement.Drop(tid)
		}
	case "keys":
		if err := s.Keyring.Reload(ctx); err != nil {
			s.Logger.Error("reloading signing keys", "error", err)
		}
	}
}

func (s *Server) loadTenantRoles(ctx context.Context) error {
	all, err := tenancy.AllStoredRoles(ctx, s.Pool)
	if err != nil {
		return err
	}
	byTenant := make(map[string]map[string][]string, len(all))
	for tid, roles := range all {
		byTenant[tid.String()] = roles
	}
	return s.Authz.ReplaceAllTenantRoles(ctx, byTenant)
}

func (s *Server) loadRolesOf(ctx context.Context, tid uuid.UUID) error {
	stored, err := tenancy.StoredRoles(ctx, s.Pool, tid)
	if err != nil {
		return err
	}
	roles := map[string][]string{}
	for _, r := range stored {
		roles[r.Name] = r.Permissions
	}
	return s.Authz.SetTenantRoles(ctx, tid.String(), roles)
}
