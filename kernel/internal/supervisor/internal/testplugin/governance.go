package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"

	"github.com/edulure/edulure/sdk"
)

// The probe's retention class (notes, by when they were written) and its
// governance routes, which call the privileged host services for the
// kernel's tests (they answer 403 unless the manifest declares the
// capability, which the operator must have allowed).

// failRetention makes every retention request fail until it is cleared.
var failRetention atomic.Bool

func (p *probe) retention() []sdk.RetentionClass {
	if personal == "missing" {
		return nil
	}
	return []sdk.RetentionClass{{
		Name: "notes", Description: "Notes about members, by when they were written.",
		Table: "notes", TimeColumn: "written_at", Subject: "user_id", ID: "id",
		Anonymise: []sdk.PersonalColumn{{Name: "body", Kind: sdk.FreeText}},
		Actions:   []sdk.RetentionAction{sdk.RetainDelete, sdk.RetainAnonymise},
		Apply: func(ctx context.Context, run *sdk.RetentionRun) (sdk.RetentionResult, error) {
			if failRetention.Load() {
				return sdk.RetentionResult{}, errors.New("the probe is told to fail its retention")
			}
			return run.Default(ctx)
		},
	}}
}

type (
	applyBody struct {
		Plugin string `json:"plugin"`
		sdk.RetentionRequest
	}
	revokeBody struct {
		Kind   string `json:"kind"`
		ID     string `json:"id"`
		Reason string `json:"reason,omitempty"`
	}
	signBody struct {
		Purpose string `json:"purpose"`
		Payload string `json:"payload"`
	}
)

func governanceRoutes(p *probe, base, read string) []sdk.Route {
	return []sdk.Route{
		{Method: http.MethodGet, Path: base + "/gov/retention", Permission: read, Summary: "Host.RetentionClasses of the caller's institution", Handler: p.govClasses},
		{Method: http.MethodPost, Path: base + "/gov/retention", Permission: read, Summary: "Host.ApplyRetention (tenant_id is the caller's unless given)",
			Request: json.RawMessage(`{"type": "object", "additionalProperties": true}`), Handler: p.govApply},
		{Method: http.MethodGet, Path: base + "/gov/grants", Permission: read, Summary: "Host.Grants of the caller's institution", Handler: p.govGrants},
		{Method: http.MethodPost, Path: base + "/gov/revoke", Permission: read, Summary: "Host.RevokeGrant as the caller", Request: revokeBody{}, Status: http.StatusNoContent, Handler: p.govRevoke},
		{Method: http.MethodPost, Path: base + "/gov/sign", Permission: read, Summary: "Host.Sign", Request: signBody{}, Handler: p.govSign},
		{Method: http.MethodPost, Path: base + "/gov/fail-retention", Permission: read, Summary: "Make retention fail", Request: failSwitch{}, Status: http.StatusNoContent, Handler: p.govFail},
	}
}

func (p *probe) govClasses(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	cs, err := p.env.Host.RetentionClasses(ctx, r.Principal.TenantID)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]any{"classes": cs})
}

func (p *probe) govApply(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in applyBody
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.TenantID == "" {
		in.TenantID = r.Principal.TenantID
	}
	res, err := p.env.Host.ApplyRetention(ctx, in.Plugin, in.RetentionRequest)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, res)
}

func (p *probe) govGrants(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	gs, err := p.env.Host.Grants(ctx, r.Principal.TenantID)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]any{"grants": gs})
}

func (p *probe) govRevoke(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in revokeBody
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if err := p.env.Host.RevokeGrant(ctx, r.Principal, r.Principal.TenantID, sdk.GrantRef{Kind: in.Kind, ID: in.ID}, in.Reason); err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

func (p *probe) govSign(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in signBody
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	sig, err := p.env.Host.Sign(ctx, in.Purpose, []byte(in.Payload))
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sig)
}

func (p *probe) govFail(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in failSwitch
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	failRetention.Store(in.Fail)
	return sdk.NoContent()
}
