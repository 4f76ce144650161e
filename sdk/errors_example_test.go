package sdk_test

import (
	"errors"
	"fmt"

	"github.com/edulure/edulure/sdk"
)

func ExampleInvalid() {
	err := sdk.Invalid(sdk.FieldError{Field: "email", Message: "must be a valid address"})
	fmt.Println(errors.Is(err, sdk.ErrInvalid))
	fmt.Println(err)
	// Output:
	// true
	// invalid: email: must be a valid address
}

func ExampleErrorf() {
	err := fmt.Errorf("enrolling: %w", sdk.Errorf(sdk.ErrConflict, "already enrolled"))
	fmt.Println(errors.Is(err, sdk.ErrConflict))
	// Output: true
}
