package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The probe's personal data, for the kernel's lifecycle tests: notes about
// a member (a row, and with storage an object holding its text), erased by
// the SDK's generic code unless the probe is told to fail its erasure
// (POST <base>/personal/fail), as a plugin with a bug or a broken database
// would.

// failErasure makes every erasure of a person fail until it is cleared.
var failErasure atomic.Bool

// leaveErasure makes every erasure of a person succeed without erasing
// the notes (POST <base>/personal/leave): a plugin whose erasure has a bug,
// which the kernel's verification must report.
var leaveErasure atomic.Bool

type (
	newNote struct {
		Body string `json:"body" minLength:"1"`
		// UserID is whom the note is about; default the caller.
		UserID string `json:"user_id,omitempty"`
	}
	failSwitch struct {
		Fail bool `json:"fail"`
	}
	leaveSwitch struct {
		Leave bool `json:"leave"`
	}
)

// personal is what the probe says of its personal data, set at link time:
// "" the notes; "none" nothing (its notes table is then undescribed);
// "missing" a class naming a table it does not have.
var personal = ""

func (p *probe) personalData() []sdk.DataClass {
	switch personal {
	case "none":
		return nil
	case "missing":
		return []sdk.DataClass{{Name: "ghosts", Table: "ghosts", Subject: "user_id", OnErase: sdk.Delete}}
	}
	notes := sdk.DataClass{
		Name: "notes", Table: "notes", Subject: "user_id", OnErase: sdk.Delete,
		Purpose: "Notes about a member, for tests.", Retention: "Until the member is erased.",
		Columns: []sdk.PersonalColumn{
			{Name: "body", Kind: sdk.FreeText, Description: "What the note says."},
			{Name: "written_by", Kind: sdk.UserRef, Description: "Who wrote it down."},
		},
		Erase: func(ctx context.Context, e *sdk.PersonalErasure) error {
			if failErasure.Load() {
				return errors.New("the probe is told to fail its erasures")
			}
			if leaveErasure.Load() {
				return nil // a bug: says done, erases nothing
			}
			return e.Default(ctx)
		},
	}
	if slices.Contains(capabilities(), sdk.CapStorage) {
		notes.Objects = "notes/{user_id}/"
	}
	return []sdk.DataClass{notes}
}

func personalRoutes(p *probe, base, read, write string) []sdk.Route {
	return []sdk.Route{
		{Method: http.MethodPost, Path: base + "/notes", Permission: read, Summary: "Write a note about a member (the caller by default)",
			Request: newNote{}, Status: http.StatusCreated, Handler: p.addNote},
		{Method: http.MethodPost, Path: base + "/personal/fail", Permission: write, Summary: "Make erasures of a person fail, or succeed again",
			Request: failSwitch{}, Status: http.StatusNoContent, Handler: setFailErasure},
		{Method: http.MethodPost, Path: base + "/personal/leave", Permission: write, Summary: "Make erasures of a person succeed without erasing the notes, or erase again",
			Request: leaveSwitch{}, Status: http.StatusNoContent, Handler: setLeaveErasure},
	}
}

func (p *probe) addNote(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in newNote
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	about := r.Principal.UserID
	if in.UserID != "" {
		id, ok := sdk.NormalizeUUID(in.UserID)
		if !ok {
			return nil, sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is not a UUID"})
		}
		about = id
	}
	var id int64
	err := r.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "INSERT INTO notes (tenant_id, user_id, body, written_by) VALUES ($1, $2, $3, $4) RETURNING id",
			r.Principal.TenantID, about, in.Body, r.Principal.UserID).Scan(&id)
	})
	if err != nil {
		return nil, err
	}
	if slices.Contains(capabilities(), sdk.CapStorage) {
		if _, err := sdk.Storage(r).Put(ctx, fmt.Sprintf("notes/%s/%d.txt", about, id), strings.NewReader(in.Body), sdk.PutOptions{ContentType: "text/plain"}); err != nil {
			return nil, err
		}
	}
	return sdk.JSON(http.StatusCreated, map[string]any{"id": id, "user_id": about})
}

func setFailErasure(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in failSwitch
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	failErasure.Store(in.Fail)
	return sdk.NoContent()
}

func setLeaveErasure(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in leaveSwitch
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	leaveErasure.Store(in.Leave)
	return sdk.NoContent()
}
