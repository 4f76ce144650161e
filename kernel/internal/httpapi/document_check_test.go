package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Every answer a test gets through testBundle.do is checked against the
// kernel's own /api/openapi.json, as a client generated from the document
// would read it: the status must be documented for the operation (a 4xx
// by its own status, not only as the default problem), and the body must
// match the schema of that status and content type. A route the document
// does not have (a 404 for an unknown path, a 405) is not checked.

// documentCheck is a bundle's document, as a router, for the plugin route
// table version it was fetched at.
type documentCheck struct {
	mu      sync.Mutex
	version uint64
	fetched bool
	router  routers.Router
}

// checkedOperations counts, for the whole package, the answers checked
// per documented operation ("GET /api/v1/tenant/members/{user_id}").
var checkedOperations sync.Map // string → *checkedOperation

type checkedOperation struct {
	mu       sync.Mutex
	plugin   string
	statuses map[int]int
}

// documentRouter is the router of the bundle's current document, fetched
// again when the plugins' route table has changed.
func (b *testBundle) documentRouter() (routers.Router, error) {
	_, version := b.kernel.Plugins.Routes()
	d := b.document
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fetched && d.version == version {
		return d.router, nil
	}
	res, err := http.Get(b.url + "/api/openapi.json")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/openapi.json: %d: %s", res.StatusCode, raw)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("loading /api/openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("/api/openapi.json is not valid OpenAPI: %w", err)
	}
	doc.Servers = nil // match paths on any host: the document's server is "/"
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	d.version, d.fetched, d.router = version, true, router
	return router, nil
}

// checkAgainstDocument fails the test when an answer does not match what
// the document says of its operation.
func (b *testBundle) checkAgainstDocument(req *http.Request, res *http.Response, raw []byte) {
	b.t.Helper()
	if b.kernel == nil {
		return // a kernel in another process (events_chaos_test)
	}
	router, err := b.documentRouter()
	if err != nil {
		b.t.Errorf("checking %s %s against /api/openapi.json: %v", req.Method, req.URL.Path, err)
		return
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return // no such operation in the document: nothing to check against
	}
	op := route.Method + " " + route.Path
	if _, ok := b.undocumented[op]; ok {
		return
	}
	status := res.StatusCode
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 res.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	input.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		b.t.Errorf("%s %s (%s): the %d answer does not match /api/openapi.json: %v\nbody: %.2000s", req.Method, req.URL.RequestURI(), op, status, err, raw)
	}
	// 431 is the HTTP server's answer to any request whose line and headers
	// are too long, before any route: the document says so once, in its
	// description, not on each operation.
	if status >= 400 && status < 500 && status != http.StatusRequestHeaderFieldsTooLarge && route.Operation.Responses.Status(status) == nil {
		b.t.Errorf("%s %s (%s) answered %d, which /api/openapi.json does not list for the operation: %s", req.Method, req.URL.RequestURI(), op, status, raw)
	}
	v, _ := checkedOperations.LoadOrStore(op, &checkedOperation{statuses: map[int]int{}})
	c := v.(*checkedOperation)
	c.mu.Lock()
	c.statuses[status]++
	if p, ok := route.Operation.Extensions["x-plugin"].(string); ok {
		c.plugin = p
	}
	c.mu.Unlock()
}

// reportCheckedOperations prints how many documented operations the tests'
// answers were checked against, and, when EDULURE_OPENAPI_CHECKED names a
// file, writes each operation with the statuses seen there.
func reportCheckedOperations() {
	var ops []string
	kernel, answers := 0, 0
	lines := []string{}
	checkedOperations.Range(func(k, v any) bool {
		c := v.(*checkedOperation)
		ops = append(ops, k.(string))
		if c.plugin == "" {
			kernel++
		}
		var st []string
		for s, n := range c.statuses {
			answers += n
			st = append(st, fmt.Sprintf("%d×%d", s, n))
		}
		sort.Strings(st)
		lines = append(lines, k.(string)+"\t"+c.plugin+"\t"+strings.Join(st, " "))
		return true
	})
	if len(ops) == 0 {
		return
	}
	sort.Strings(lines)
	fmt.Printf("openapi: %d answers checked against /api/openapi.json, of %d operations (%d kernel, %d plugin)\n", answers, len(ops), kernel, len(ops)-kernel)
	if f := os.Getenv("EDULURE_OPENAPI_CHECKED"); f != "" {
		_ = os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
}
