package commerce

import (
	"regexp"
	"strings"

	"github.com/edulure/edulure/sdk"
)

// What a request's schema cannot say, and the patterns of Stripe's values
// the plugin stores.

var (
	currencyPattern = regexp.MustCompile(`^[a-z]{3}$`)
	statusPattern   = regexp.MustCompile(`^[a-z_]{1,40}$`)
	stripeIDPattern = regexp.MustCompile(`^[a-z]{2,4}_[A-Za-z0-9_]{1,250}$`)
)

// notBlank refuses text that is only whitespace; it returns the text
// trimmed.
func notBlank(field, s string) (string, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return "", sdk.Invalid(sdk.FieldError{Field: field, Message: "must not be blank"})
	}
	return t, nil
}

// errNotConfigured: the institution has not set a setting the request
// needs.
func errNotConfigured(setting string) error {
	return sdk.Errorf(sdk.ErrConflict, "the institution has not set %s in the commerce plugin's settings (PUT /api/v1/tenant/plugins/commerce)", setting).WithCode("stripe_not_configured")
}
