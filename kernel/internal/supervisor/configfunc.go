package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxSecretFile bounds what file() reads: a secret, not a data set.
const maxSecretFile = 64 << 10

// functions are what a plugin's config block in plugins.hcl may call, so
// that secrets come from the environment or from files (Docker and
// Kubernetes secrets) and are never written in plugins.hcl:
//
//	config = {
//	  stripe_key     = env("STRIPE_KEY")
//	  webhook_secret = file("/run/secrets/stripe_webhook")
//	}
//
// env(name) is the value of an environment variable of the kernel's
// process; an unset variable is an error (a set but empty one is "").
// file(path) is a file's content without one trailing newline; a relative
// path is resolved against the directory of plugins.hcl. Neither error
// message repeats a value.
func (p *configParser) functions() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env": function.New(&function.Spec{
			Description: "The value of an environment variable of the kernel.",
			Params:      []function.Parameter{{Name: "name", Type: cty.String}},
			Type:        function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				name := args[0].AsString()
				if name == "" {
					return cty.NilVal, function.NewArgErrorf(0, "name an environment variable, e.g. env(%q)", "STRIPE_KEY")
				}
				v, ok := os.LookupEnv(name)
				if !ok {
					return cty.NilVal, function.NewArgErrorf(0, "the environment variable %s is not set in the kernel's environment", name)
				}
				return cty.StringVal(v), nil
			},
		}),
		"file": function.New(&function.Spec{
			Description: "The content of a file, without one trailing newline.",
			Params:      []function.Parameter{{Name: "path", Type: cty.String}},
			Type:        function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				path := args[0].AsString()
				if path == "" {
					return cty.NilVal, function.NewArgErrorf(0, "name a file, e.g. file(%q)", "/run/secrets/stripe_key")
				}
				if !filepath.IsAbs(path) {
					path = filepath.Join(p.dir, path)
				}
				b, err := readSecretFile(path)
				if err != nil {
					return cty.NilVal, function.NewArgErrorf(0, "%v", err)
				}
				s, ok := strings.CutSuffix(string(b), "\r\n")
				if !ok {
					s = strings.TrimSuffix(s, "\n")
				}
				return cty.StringVal(s), nil
			},
		}),
	}}
}

// readSecretFile reads a file of at most maxSecretFile bytes. Its errors
// name the file, never its content.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("cannot read %s: %v", path, pe.Err)
		}
		return nil, fmt.Errorf("cannot read %s", path)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s", path)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%s is larger than %d KiB; file() reads secrets, not data", path, maxSecretFile>>10)
	}
	return b, nil
}
