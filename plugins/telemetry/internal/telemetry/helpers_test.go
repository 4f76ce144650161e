package telemetry_test

import (
	"os"
	"testing"

	"github.com/edulure/edulure/sdk/plugintest"
)

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }
