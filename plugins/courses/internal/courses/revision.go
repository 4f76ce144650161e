package courses

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// A course's draft has a revision, its ETag: every change to the draft
// (the course's settings, modules, lessons, prerequisites, quizzes and
// assignments) makes the next one. A change sent with If-Match: <revision>
// applies only to that revision, so that two authors cannot overwrite each
// other's edits unknowingly; without If-Match it applies.

// editDraft changes a course's draft: it reads If-Match, locks the course
// as one its caller may author (authorCourse), refuses a stale revision,
// records the change as the draft's next revision and runs fn, all in one
// transaction. It returns the new revision, the answer's ETag. fn sees the
// course with its new revision and updated_at.
func editDraft(ctx context.Context, req *sdk.Request, courseID string, fn func(tx pgx.Tx, c *course) error) (int, error) {
	return changeDraft(ctx, req, courseID, true, nil, fn)
}

// withDraft is editDraft for a change that does not make a new revision
// (publishing, unpublishing): If-Match must still match.
func withDraft(ctx context.Context, req *sdk.Request, courseID string, fn func(tx pgx.Tx, c *course) error) error {
	_, err := changeDraft(ctx, req, courseID, false, nil, fn)
	return err
}

// changeDraft is editDraft and withDraft; first, when set, runs in the
// transaction before the course is locked (a lock that must be taken
// before the course's).
func changeDraft(ctx context.Context, req *sdk.Request, courseID string, touch bool, first func(tx pgx.Tx) error,
	fn func(tx pgx.Tx, c *course) error) (int, error) {
	want, err := expectedRevision(req)
	if err != nil {
		return 0, err
	}
	var rev int
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if first != nil {
			if err := first(tx); err != nil {
				return err
			}
		}
		c, err := authorCourse(ctx, tx, req, courseID)
		if err != nil {
			return err
		}
		if want != 0 && want != c.DraftRevision {
			return sdk.Errorf(sdk.ErrConflict, "the course's draft is at revision %d, not %d: reload it and apply the change again",
				c.DraftRevision, want).WithCode("stale_revision")
		}
		if touch {
			if rev, err = touchDraft(ctx, tx, courseID); err != nil {
				return err
			}
			c.DraftRevision = rev
		}
		return fn(tx, c)
	})
	return rev, err
}

// touchDraft records a change to the course's draft: a new draft revision
// and updated_at. The caller holds the course's lock.
func touchDraft(ctx context.Context, tx pgx.Tx, courseID string) (int, error) {
	var rev int
	err := tx.QueryRow(ctx, `UPDATE courses SET draft_revision = draft_revision + 1, updated_at = now() WHERE id = $1 RETURNING draft_revision`, courseID).Scan(&rev)
	if err != nil {
		return 0, fmt.Errorf("recording a change to course %s: %w", courseID, err)
	}
	return rev, nil
}

// expectedRevision reads If-Match: "*" or absent (0: any revision), or a
// draft revision, quoted or not ("3", W/"3", 3).
func expectedRevision(req *sdk.Request) (int, error) {
	v := strings.TrimSpace(req.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, sdk.Errorf(sdk.ErrBadRequest, "If-Match must be the course's draft_revision (its ETag), not %q", req.Header.Get("If-Match"))
	}
	return n, nil
}

// respondWithRevision answers status with v (nil: no body) and the
// course's draft revision as the ETag (when rev > 0), for the next
// change's If-Match.
func respondWithRevision(status int, v any, rev int) (*sdk.Response, error) {
	resp := &sdk.Response{Status: status, Header: http.Header{}}
	if v != nil {
		var err error
		if resp, err = sdk.JSON(status, v); err != nil {
			return nil, err
		}
	}
	if rev > 0 {
		resp.Header.Set("ETag", `"`+strconv.Itoa(rev)+`"`)
	}
	return resp, nil
}
