package command

import (
	"context"
	"fmt"
	"io"

	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/kernel/internal/token"
)

func init() {
	commands["keys"] = command{synopsis: "Token signing keys: keys list | keys rotate | keys retire <kid>", run: keys}
}

func keys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate" && args[0] != "retire") || (args[0] == "retire" && len(args) != 2) {
		fmt.Fprintln(stderr, "usage: edulure keys list | rotate | retire <kid>")
		return errUsage
	}
	pool, cfg, err := openAdmin(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	sealer, err := seal.New(cfg.SecretKey)
	if err != nil {
		return err
	}
	kr, err := token.NewKeyring(ctx, pool, sealer, token.Options{Issuer: cfg.Issuer, TTL: cfg.AccessTokenTTL})
	if err != nil {
		return err
	}
	switch args[0] {
	case "rotate":
		kid, err := kr.Rotate(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new signing key %s; older keys keep verifying until retired\n", kid)
	case "retire":
		if err := kr.Retire(ctx, args[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "retired %s\n", args[1])
	}
	for _, k := range kr.Keys() {
		state := "verifying"
		switch {
		case k.Active:
			state = "signing"
		case k.Retired:
			state = "retired"
		}
		fmt.Fprintf(stdout, "%s  %-9s  created %s\n", k.KID, state, k.CreatedAt.Format("2006-01-02 15:04:05Z07:00"))
	}
	return nil
}
