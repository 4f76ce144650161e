package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/events"
	"github.com/edulure/edulure/kernel/internal/jobs"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/wire"
)

// ReplayRequest selects delivery rows to replay (or to discard). Without
// ids, the range: rows with status (default dead), of subscriber if given,
// with IDs from from_id to to_id inclusive.
type ReplayRequest struct {
	IDs        []int64 `json:"ids,omitempty"`
	Status     string  `json:"status,omitempty"`
	Subscriber string  `json:"subscriber,omitempty"`
	FromID     int64   `json:"from_id,omitempty"`
	ToID       int64   `json:"to_id,omitempty"`
}

// ReplayResponse says how many deliveries were set to be delivered again.
type ReplayResponse struct {
	Replayed int64 `json:"replayed"`
}

// DiscardResponse says how many dead letters were discarded.
type DiscardResponse struct {
	Discarded int64 `json:"discarded"`
}

// LogReplayRequest asks for a part of the event log (by seq, as GET
// /api/v1/events shows it) to be delivered to a subscriber again: one event
// (from_seq = to_seq) or a range, of one type or every type it subscribes
// to; an institution's admins replay their institution's events only.
type LogReplayRequest struct {
	Subscriber string `json:"subscriber"`
	Type       string `json:"type,omitempty"`
	FromSeq    int64  `json:"from_seq"`
	ToSeq      int64  `json:"to_seq,omitempty"` // default: the head of the log
}

// LogReplayResponse is the replay started: the range its cursor reads.
type LogReplayResponse struct {
	Cursor  int64 `json:"cursor"`
	FromSeq int64 `json:"from_seq"`
	ToSeq   int64 `json:"to_seq"`
}

// RunJobRequest is the optional body of a manual run.
type RunJobRequest struct {
	Args map[string]json.RawMessage `json:"args,omitempty" doc:"A JSON object handed to the job."`
}

// EventsQuery is what GET /api/v1/events reads.
type EventsQuery struct {
	Type string `query:"type" doc:"Only events of this type, such as courses.lesson.completed.v1."`
	From string `query:"from" format:"date-time" doc:"Only events that occurred at or after this time (RFC 3339)."`
	To   string `query:"to" format:"date-time" doc:"Only events that occurred before this time (RFC 3339)."`
	PageQuery
}

// DeliveriesQuery is what GET /api/v1/events/deliveries reads.
type DeliveriesQuery struct {
	Status     string `query:"status" enum:"pending,delivered,dead,skipped" doc:"Only deliveries in this state."`
	Subscriber string `query:"subscriber" doc:"Only deliveries to this plugin."`
	Type       string `query:"type" doc:"Only deliveries of events of this type."`
	PageQuery
}

// RunsQuery is what GET /api/v1/jobs/{plugin}/{job}/runs reads.
type RunsQuery struct {
	Status string `query:"status" enum:"queued,running,retrying,succeeded,failed,skipped" doc:"Only runs in this state."`
	PageQuery
}

var deliveryStatuses = []string{"pending", "delivered", "dead", "skipped"}

// scope is the institution a caller sees: its own, or every one (uuid.Nil)
// for an operator without an institution in the token.
func scope(c echo.Context) uuid.UUID { return principalOf(c).TenantID }

func (s *Server) eventTypes(c echo.Context) error {
	return c.JSON(http.StatusOK, whole(s.Events.Catalogue()))
}

func (s *Server) listEvents(c echo.Context) error {
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	before, err := afterInt(pg)
	if err != nil {
		return err
	}
	f := events.Filter{Tenant: scope(c), Type: c.QueryParam("type"), Before: before, Limit: pg.Limit + 1}
	var fields []sdk.FieldError
	if f.Type != "" && !wire.EventType.MatchString(f.Type) {
		fields = append(fields, sdk.FieldError{Field: "type", Message: "must be an event type such as courses.lesson.completed.v1"})
	}
	f.From, f.To = timeRange(c, &fields)
	if len(fields) > 0 {
		sort.Slice(fields, func(i, j int) bool { return fields[i].Field < fields[j].Field })
		return sdk.Invalid(fields...)
	}
	// Events' data (personal data, tokens) needs a permission of its own.
	p := principalOf(c)
	perm := "tenancy.event.data.read"
	in := s.authzInput(p, perm)
	if !p.HasTenant() {
		perm = "platform.event.data.read"
		in = s.authzInput(p, perm)
	}
	if f.WithData, err = s.Authz.Allowed(c.Request().Context(), in); err != nil {
		return err
	}
	evs, err := s.Events.Events(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(evs, pg.Limit, func(e events.EventInfo) []string { return intKey(e.Seq) }))
}

func (s *Server) listDeliveries(c echo.Context) error {
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	before, err := afterInt(pg)
	if err != nil {
		return err
	}
	f := events.Filter{Tenant: scope(c), Status: c.QueryParam("status"), Subscriber: c.QueryParam("subscriber"), Type: c.QueryParam("type"), Before: before, Limit: pg.Limit + 1}
	if err := checkDeliveryFilter(f.Status, f.Subscriber, f.Type); err != nil {
		return err
	}
	ds, err := s.Events.Deliveries(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(ds, pg.Limit, func(d events.DeliveryInfo) []string { return intKey(d.ID) }))
}

func checkDeliveryFilter(status, subscriber, typ string) error {
	var fields []sdk.FieldError
	if status != "" && !slices.Contains(deliveryStatuses, status) {
		fields = append(fields, sdk.FieldError{Field: "status", Message: "must be pending, delivered, dead or skipped"})
	}
	if subscriber != "" && !wire.PluginName.MatchString(subscriber) {
		fields = append(fields, sdk.FieldError{Field: "subscriber", Message: "must be a plugin name"})
	}
	if typ != "" && !wire.EventType.MatchString(typ) {
		fields = append(fields, sdk.FieldError{Field: "type", Message: "must be an event type such as courses.lesson.completed.v1"})
	}
	if len(fields) > 0 {
		return sdk.Invalid(fields...)
	}
	return nil
}

func pathInt(c echo.Context, name string) (int64, error) {
	n, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || n <= 0 {
		return 0, sdk.Errorf(sdk.ErrNotFound, "%s %q is not a valid ID", name, c.Param(name))
	}
	return n, nil
}

func (s *Server) getDelivery(c echo.Context) error {
	id, err := pathInt(c, "delivery_id")
	if err != nil {
		return err
	}
	d, err := s.Events.Delivery(c.Request().Context(), scope(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (s *Server) replayDelivery(c echo.Context) error {
	id, err := pathInt(c, "delivery_id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := s.Events.Delivery(ctx, scope(c), id)
	if err != nil {
		return err
	}
	if d.Status == "pending" {
		return problem.New(http.StatusConflict, "delivery-pending", fmt.Sprintf("delivery %d is still pending (attempt %d of %d); it needs no replay", id, d.Attempts, d.MaxAttempts))
	}
	return s.replay(c, events.ReplayRange{Tenant: scope(c), IDs: []int64{id}}, map[string]any{"delivery_id": id, "event_id": d.EventID, "subscriber": d.Subscriber})
}

func (s *Server) replayDeliveries(c echo.Context) error {
	body, err := s.deliveryRange(c)
	if err != nil {
		return err
	}
	r := events.ReplayRange{Tenant: scope(c), IDs: body.IDs, Status: body.Status, Subscriber: body.Subscriber, FromID: body.FromID, ToID: body.ToID}
	return s.replay(c, r, map[string]any{"ids": body.IDs, "status": body.Status, "subscriber": body.Subscriber, "from_id": body.FromID, "to_id": body.ToID})
}

// deliveryRange reads and checks the body of a replay or a discard.
func (s *Server) deliveryRange(c echo.Context) (ReplayRequest, error) {
	var body ReplayRequest
	if err := decodeJSON(c, &body); err != nil {
		return body, err
	}
	var fields []sdk.FieldError
	if len(body.IDs) > 1000 {
		fields = append(fields, sdk.FieldError{Field: "ids", Message: "at most 1000 at a time"})
	}
	if body.Status == "pending" {
		fields = append(fields, sdk.FieldError{Field: "status", Message: "pending deliveries need no replay and cannot be discarded"})
	}
	if body.FromID < 0 || body.ToID < 0 || (body.ToID != 0 && body.FromID > body.ToID) {
		fields = append(fields, sdk.FieldError{Field: "from_id", Message: "must be a delivery ID not above to_id"})
	}
	if len(fields) > 0 {
		return body, sdk.Invalid(fields...)
	}
	return body, checkDeliveryFilter(body.Status, body.Subscriber, "")
}

// replay replays the deliveries and audits it in one transaction.
func (s *Server) replay(c echo.Context, r events.ReplayRange, details map[string]any) error {
	action := "tenancy.events.replayed"
	if r.Tenant == uuid.Nil {
		action = "platform.events.replayed"
	}
	var n int64
	err := s.inTx(c, func(t *txc) error {
		var err error
		if n, err = s.Events.Replay(c.Request().Context(), t.Tx, r); err != nil {
			return err
		}
		details["replayed"] = n
		return t.audit(r.Tenant, action, "deliveries", details)
	})
	if err != nil {
		return err
	}
	if n > 0 {
		s.Events.Replayed()
	}
	return c.JSON(http.StatusOK, ReplayResponse{Replayed: n})
}

// discardDeliveries deletes dead letters (by IDs or a range, like a
// replay) and audits it.
func (s *Server) discardDeliveries(c echo.Context) error {
	body, err := s.deliveryRange(c)
	if err != nil {
		return err
	}
	if body.Status != "" && body.Status != "dead" {
		return sdk.Invalid(sdk.FieldError{Field: "status", Message: "only dead letters are discarded (dead); delivered and skipped rows stay until the retention prunes them"})
	}
	r := events.ReplayRange{Tenant: scope(c), IDs: body.IDs, Status: body.Status, Subscriber: body.Subscriber, FromID: body.FromID, ToID: body.ToID}
	action := "tenancy.events.discarded"
	if r.Tenant == uuid.Nil {
		action = "platform.events.discarded"
	}
	var n int64
	err = s.inTx(c, func(t *txc) error {
		var err error
		if n, err = s.Events.Discard(c.Request().Context(), t.Tx, r); err != nil {
			return err
		}
		return t.audit(r.Tenant, action, "deliveries", map[string]any{"ids": body.IDs, "status": body.Status, "subscriber": body.Subscriber,
			"from_id": body.FromID, "to_id": body.ToID, "discarded": n})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, DiscardResponse{Discarded: n})
}

// replayLog delivers a part of the log to a subscriber again.
func (s *Server) replayLog(c echo.Context) error {
	var body LogReplayRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	var fields []sdk.FieldError
	if !wire.PluginName.MatchString(body.Subscriber) {
		fields = append(fields, sdk.FieldError{Field: "subscriber", Message: "must be a plugin name"})
	}
	if body.Type != "" && !wire.EventType.MatchString(body.Type) {
		fields = append(fields, sdk.FieldError{Field: "type", Message: "must be an event type such as courses.lesson.completed.v1"})
	}
	if body.FromSeq < 1 {
		fields = append(fields, sdk.FieldError{Field: "from_seq", Message: "must be the seq of an event (1 or more)"})
	}
	if body.ToSeq < 0 || (body.ToSeq != 0 && body.ToSeq < body.FromSeq) {
		fields = append(fields, sdk.FieldError{Field: "to_seq", Message: "must not be below from_seq"})
	}
	if len(fields) > 0 {
		return sdk.Invalid(fields...)
	}
	tenant := scope(c)
	action := "tenancy.events.replayed"
	if tenant == uuid.Nil {
		action = "platform.events.replayed"
	}
	var out LogReplayResponse
	err := s.inTx(c, func(t *txc) error {
		var err error
		out.Cursor, out.FromSeq, out.ToSeq, err = s.Events.ReplayLog(c.Request().Context(), t.Tx,
			events.LogReplay{Tenant: tenant, Subscriber: body.Subscriber, Type: body.Type, FromSeq: body.FromSeq, ToSeq: body.ToSeq})
		if err != nil {
			return err
		}
		return t.audit(tenant, action, "events", map[string]any{"subscriber": body.Subscriber, "type": body.Type, "from_seq": out.FromSeq, "to_seq": out.ToSeq})
	})
	if err != nil {
		return err
	}
	s.Events.Replayed()
	return c.JSON(http.StatusAccepted, out)
}

func (s *Server) listJobs(c echo.Context) error {
	js, err := s.Jobs.Jobs(c.Request().Context(), scope(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, whole(js))
}

func (s *Server) knownJob(c echo.Context) (plugin, job string, err error) {
	plugin, job = c.Param("plugin"), c.Param("job")
	if _, _, ok := s.Jobs.Job(plugin, job); !ok {
		return "", "", problem.New(http.StatusNotFound, "job-not-found", fmt.Sprintf("no loaded plugin %q declares a job %q", plugin, job))
	}
	return plugin, job, nil
}

func (s *Server) listJobRuns(c echo.Context) error {
	plugin, job, err := s.knownJob(c)
	if err != nil {
		return err
	}
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	before, err := afterUUID(pg)
	if err != nil {
		return err
	}
	status := c.QueryParam("status")
	if status != "" && !slices.Contains([]string{"queued", "running", "retrying", "succeeded", "failed", "skipped"}, status) {
		return sdk.Invalid(sdk.FieldError{Field: "status", Message: "must be queued, running, retrying, succeeded, failed or skipped"})
	}
	f := jobs.RunFilter{Plugin: plugin, Job: job, Tenant: scope(c), Status: status, Limit: pg.Limit + 1}
	if before != uuid.Nil {
		f.Before = &before
	}
	runs, err := s.Jobs.Runs(c.Request().Context(), f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(runs, pg.Limit, func(r jobs.RunInfo) []string { return key(r.ID) }))
}

func (s *Server) getJobRun(c echo.Context) error {
	plugin, job, err := s.knownJob(c)
	if err != nil {
		return err
	}
	id, err := pathUUID(c, "run_id")
	if err != nil {
		return err
	}
	r, err := s.Jobs.Run(c.Request().Context(), plugin, job, id, scope(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

// runJob starts a run now. A per-institution job runs for the caller's
// institution and needs the job's permission there; a platform job needs an
// operator with the job's permission.
func (s *Server) runJob(c echo.Context) error {
	plugin, job, err := s.knownJob(c)
	if err != nil {
		return err
	}
	perTenant, perm, _ := s.Jobs.Job(plugin, job)
	p := principalOf(c)
	check := accessCheck{Access: Platform, Permission: perm, What: fmt.Sprintf("job %s/%s", plugin, job)}
	if perTenant {
		check.Access = TenantScoped
	}
	if err := s.authorize(c.Request().Context(), p, check); err != nil {
		return err
	}
	var body RunJobRequest
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &body); err != nil {
			return err
		}
	}
	var args json.RawMessage
	if body.Args != nil {
		if args, err = json.Marshal(body.Args); err != nil {
			return err
		}
	}
	tenant := uuid.Nil
	if perTenant {
		tenant = p.TenantID
	}
	kind, id := p.Actor()
	var runID uuid.UUID
	err = s.inTx(c, func(t *txc) error {
		var err error
		if runID, err = s.Jobs.Trigger(c.Request().Context(), t.Tx, plugin, job, tenant, kind+":"+id, args); err != nil {
			return err
		}
		return t.audit(tenant, "jobs.run.requested", plugin+"/"+job, map[string]any{"run_id": runID, "plugin": plugin, "job": job})
	})
	if err != nil {
		return err
	}
	run, err := s.Jobs.Run(c.Request().Context(), plugin, job, runID, uuid.Nil)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/jobs/%s/%s/runs/%s", plugin, job, runID))
	return c.JSON(http.StatusAccepted, run)
}

// timeRange reads ?from= and ?to= (RFC 3339; from before to), adding to
// fields what is wrong with them.
func timeRange(c echo.Context, fields *[]sdk.FieldError) (from, to time.Time) {
	for name, at := range map[string]*time.Time{"from": &from, "to": &to} {
		if v := c.QueryParam(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				*fields = append(*fields, sdk.FieldError{Field: name, Message: "must be a time in RFC 3339, such as 2025-03-01T00:00:00Z"})
				continue
			}
			*at = t
		}
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		*fields = append(*fields, sdk.FieldError{Field: "from", Message: "must be before to"})
	}
	return from, to
}
