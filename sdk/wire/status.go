package wire

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// Host calls that answer errors as gRPC statuses (the object-storage calls,
// since v1.2) carry an error kind as the status code and the problem code
// in an ErrorInfo detail (domain ErrorDomain, reason the code). The SDK reads
// them back into the sdk error a handler can return as it is.

// ErrorDomain is the ErrorInfo domain of the kernel's status details.
const ErrorDomain = "edulure.dev"

// statusCodes maps kinds to status codes; the first of a code is its kind
// when read back.
var statusCodes = []struct {
	kind string
	code codes.Code
}{
	{"invalid", codes.InvalidArgument},
	{"not_found", codes.NotFound},
	{"conflict", codes.AlreadyExists},
	{"forbidden", codes.PermissionDenied},
	{"too_large", codes.ResourceExhausted},
	{"unavailable", codes.Unavailable},
	{"unauthorized", codes.Unauthenticated},
	{"bad_request", codes.InvalidArgument},
	{"gone", codes.FailedPrecondition},
	{"too_many_requests", codes.ResourceExhausted},
	{"conflict", codes.FailedPrecondition},
}

// ErrorStatus is the gRPC status error of a wire error.
func ErrorStatus(e *pluginv1.Error) error {
	c := codes.Internal
	for _, sc := range statusCodes {
		if sc.kind == e.Kind {
			c = sc.code
			break
		}
	}
	st := status.New(c, e.Detail)
	if e.Code != "" {
		if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Domain: ErrorDomain, Reason: e.Code}); err == nil {
			st = withInfo
		}
	}
	return st.Err()
}

// StatusError reads a gRPC status error back into a wire error (kind
// "internal" for codes no kind has); nil for an error that is not a
// status.
func StatusError(err error) *pluginv1.Error {
	st, ok := status.FromError(err)
	if !ok {
		var ge interface{ GRPCStatus() *status.Status }
		if !errors.As(err, &ge) {
			return nil
		}
		st = ge.GRPCStatus()
	}
	out := &pluginv1.Error{Kind: Internal.Name, Detail: st.Message()}
	for _, sc := range statusCodes {
		if sc.code == st.Code() {
			out.Kind = sc.kind
			break
		}
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == ErrorDomain {
			out.Code = info.Reason
		}
	}
	return out
}
