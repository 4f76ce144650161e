package plugintest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/wire"
)

// validateManifest lists everything wrong with m that the kernel refuses
// and that can be judged without the kernel: the rules of
// wire.CheckManifest (the kernel applies the same ones at load), plus the
// shape of cron schedules. A plugin that passes its tests is not refused at
// load for a mistake the harness could have named.
func validateManifest(m sdk.Manifest) error {
	pm, _, err := sdk.EncodeManifest(m)
	if err != nil {
		return err
	}
	_, errs := wire.CheckManifest(pm)
	for _, j := range m.Jobs {
		if j.Schedule != "" && len(strings.Fields(j.Schedule)) != 5 && !strings.HasPrefix(j.Schedule, "@") {
			errs = append(errs, fmt.Errorf("job %q: schedule %q: a cron schedule has five fields", j.Name, j.Schedule))
		}
	}
	return errors.Join(errs...)
}
