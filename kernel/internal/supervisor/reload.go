package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
)

// ReloadResult says what a reload did, plugin by plugin.
type ReloadResult struct {
	Started   []string          `json:"started"`
	Upgraded  []string          `json:"upgraded"`
	Restarted []string          `json:"restarted"`
	Removed   []string          `json:"removed"`
	Unchanged []string          `json:"unchanged"`
	Failed    map[string]string `json:"failed"`
}

// Reload re-reads plugins.hcl and brings the running plugins in line:
// new plugins start; removed ones drain and stop; a changed plugin (binary,
// version, configuration or limits) is upgraded by starting the new process
// beside the old one, switching routes over once it is ready and then
// draining and stopping the old one, so no request fails in between; a
// quarantined or failed plugin gets a fresh start. If the new process of a
// running plugin fails, the old one keeps serving.
func (s *Supervisor) Reload(ctx context.Context) (ReloadResult, error) {
	s.reload.Lock()
	defer s.reload.Unlock()
	res := ReloadResult{Started: []string{}, Upgraded: []string{}, Restarted: []string{}, Removed: []string{}, Unchanged: []string{}, Failed: map[string]string{}}
	if s.opts.ConfigPath == "" {
		return res, errors.New("the kernel runs without a plugins.hcl (EDULURE_PLUGINS_FILE is empty)")
	}
	cfg, err := LoadConfig(s.opts.ConfigPath)
	if err != nil {
		return res, err
	}
	want := map[string]PluginConfig{}
	for _, pc := range cfg.Plugins {
		want[pc.Name] = pc
	}
	s.mu.RLock()
	var gone []*slot
	for name, sl := range s.slots {
		if _, ok := want[name]; !ok {
			gone = append(gone, sl)
		}
	}
	s.mu.RUnlock()
	for _, sl := range gone {
		s.remove(sl)
		res.Removed = append(res.Removed, sl.name)
	}
	for _, pc := range cfg.Plugins {
		s.mu.RLock()
		sl, ok := s.slots[pc.Name]
		s.mu.RUnlock()
		if !ok {
			s.add(ctx, pc)
			if st, _ := s.Status(pc.Name); st.State == StateFailed || st.State == StateQuarantined {
				res.Failed[pc.Name] = st.LastError
			} else {
				res.Started = append(res.Started, pc.Name)
			}
			continue
		}
		st := sl.status()
		sl.mu.Lock()
		same := sameConfig(sl.cfg, pc)
		sl.mu.Unlock()
		switch {
		case same && st.State == StateRunning:
			res.Unchanged = append(res.Unchanged, pc.Name)
		case st.State == StateRunning:
			if err := s.upgrade(ctx, sl, pc); err != nil {
				res.Failed[pc.Name] = err.Error()
				continue
			}
			res.Upgraded = append(res.Upgraded, pc.Name)
		default: // quarantined, failed, stopped: start afresh
			s.remove(sl)
			s.add(ctx, pc)
			if st, _ := s.Status(pc.Name); st.State == StateFailed || st.State == StateQuarantined {
				res.Failed[pc.Name] = st.LastError
			} else {
				res.Restarted = append(res.Restarted, pc.Name)
			}
		}
	}
	for _, l := range [][]string{res.Started, res.Upgraded, res.Restarted, res.Removed, res.Unchanged} {
		sort.Strings(l)
	}
	return res, nil
}

// upgrade starts pc beside the slot's current instance and switches over.
func (s *Supervisor) upgrade(ctx context.Context, sl *slot, pc PluginConfig) error {
	inst, err := s.start(ctx, pc, s.otherRoutes(sl.name))
	if err != nil {
		s.logger.Error("plugin upgrade failed; the running version keeps serving", "plugin", sl.name, "version", pc.Version, "error", err)
		return fmt.Errorf("starting the new version: %w", err)
	}
	if err := s.install(sl, inst); err != nil {
		return err
	}
	s.logger.Info("plugin upgraded", "plugin", sl.name, "version", pc.Version)
	return nil
}

// remove stops a slot's monitor and instance and drops its routes and
// permissions.
func (s *Supervisor) remove(sl *slot) {
	sl.mu.Lock()
	stop, done := sl.stop, sl.done
	sl.state = StateStopped
	sl.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	s.mu.Lock()
	if s.slots[sl.name] == sl {
		delete(s.slots, sl.name)
	}
	s.mu.Unlock()
	s.rebuildTable()
	if err := s.cat.Replace(sl.name, nil); err == nil {
		if err := s.authz.SetDefaults(s.ctx, s.cat.Defaults()); err != nil {
			s.logger.Error("reloading default grants", "error", err)
		}
	}
	if inst := sl.inst.Swap(nil); inst != nil {
		inst.stop(s.opts.DrainTimeout)
	}
}

func sameConfig(a, b PluginConfig) bool {
	return a.Path == b.Path && a.Version == b.Version && a.SHA256 == b.SHA256 &&
		a.EnabledByDefault == b.EnabledByDefault && bytes.Equal(a.Config, b.Config) && a.Limits == b.Limits
}
