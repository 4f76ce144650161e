package plugintest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/wire"
)

// validateManifest lists everything wrong with m that the kernel refuses
// and that can be judged without the kernel: the rules of
// wire.CheckManifest (the kernel applies the same ones at load), the
// compilation of the schemas of the events it publishes, and the shape of
// cron schedules. A plugin that passes its tests is not refused at load for
// a mistake the harness could have named.
func validateManifest(m sdk.Manifest) error {
	pm, _, err := sdk.EncodeManifest(m)
	if err != nil {
		return err
	}
	_, errs := wire.CheckManifest(pm)
	for _, e := range m.Publishes {
		if len(e.Schema) == 0 {
			continue // CheckManifest said so
		}
		if _, err := sdk.CompileEventSchema(e.Type, e.Schema); err != nil {
			errs = append(errs, err)
		}
	}
	for _, j := range m.Jobs {
		// A job with neither a schedule nor an event runs on demand only.
		if j.Schedule == "" {
			continue
		}
		if err := checkSchedule(j.Schedule); err != nil {
			errs = append(errs, fmt.Errorf("job %q: schedule %q: %w", j.Name, j.Schedule, err))
		}
	}
	return errors.Join(errs...)
}

// descriptors are the named schedules the kernel's cron parser knows.
var descriptors = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// checkSchedule judges the shape of a schedule as the kernel's parser
// (robfig/cron's standard one) reads it: an optional CRON_TZ=<zone> or
// TZ=<zone> prefix, then five cron fields, a descriptor (@daily...) or
// "@every <duration>" (a Go duration: "@every 1h30m"). The values of cron
// fields are the kernel's to judge.
func checkSchedule(spec string) error {
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		zone, rest, ok := strings.Cut(spec, " ")
		if !ok {
			return errors.New("a time zone needs a schedule after it")
		}
		_, name, _ := strings.Cut(zone, "=")
		if _, err := time.LoadLocation(name); err != nil {
			return fmt.Errorf("time zone %q: %w", name, err)
		}
		spec = strings.TrimSpace(rest)
	}
	if after, ok := strings.CutPrefix(spec, "@every "); ok {
		if _, err := time.ParseDuration(after); err != nil {
			return fmt.Errorf("@every needs a duration such as 1h or 30m: %w", err)
		}
		return nil
	}
	if strings.HasPrefix(spec, "@") {
		if slices.Contains(descriptors, spec) {
			return nil
		}
		return fmt.Errorf("unknown descriptor (use %s or @every <duration>)", strings.Join(descriptors, ", "))
	}
	if n := len(strings.Fields(spec)); n != 5 {
		return fmt.Errorf("a cron schedule has five fields (minute hour day-of-month month day-of-week), not %d", n)
	}
	return nil
}
