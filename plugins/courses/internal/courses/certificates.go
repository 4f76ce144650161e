package courses

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Certificate is an issued certificate as its holder and the institution's
// admins see it.
type Certificate struct {
	ID          string    `json:"id" format:"uuid"`
	EnrolmentID string    `json:"enrolment_id" format:"uuid"`
	CourseID    string    `json:"course_id" format:"uuid"`
	UserID      string    `json:"user_id" format:"uuid"`
	IssuedAt    time.Time `json:"issued_at"`
	// Content and Canonical are absent once the holder's personal data was
	// erased: the record stays (and the hash verifies) without them.
	Content *CertificateContent `json:"content,omitempty"`
	// Canonical is the exact text the hash covers: Content encoded as
	// canonical JSON (certificateCanonical).
	Canonical string `json:"canonical,omitempty" doc:"The exact text the SHA-256 covers; absent once the holder was erased."`
	SHA256    string `json:"sha256" pattern:"^[0-9a-f]{64}$"`
	// VerifyPath is the public route that checks the certificate: anyone
	// given the ID and the hash can confirm it was issued.
	VerifyPath string `json:"verify_path"`
}

// CertificateContent is what a certificate states. Its fields are in
// alphabetical order of their JSON names, so encoding it gives canonical
// JSON: sorted keys, no insignificant whitespace, UTF-8, no HTML escaping
// (the form RFC 8785 gives for strings and small integers, which are all
// it holds).
type CertificateContent struct {
	CertificateID string `json:"certificate_id" format:"uuid"`
	CompletedAt   string `json:"completed_at" format:"date-time" doc:"RFC 3339, UTC."`
	CourseID      string `json:"course_id" format:"uuid"`
	CourseTitle   string `json:"course_title"`
	CourseVersion int    `json:"course_version" minimum:"1"`
	EnrolmentID   string `json:"enrolment_id" format:"uuid"`
	IssuedAt      string `json:"issued_at" format:"date-time" doc:"RFC 3339, UTC."`
	Issuer        string `json:"issuer"`
	TenantID      string `json:"tenant_id" format:"uuid"`
	UserID        string `json:"user_id" format:"uuid"`
}

// Verification is the answer of the public verification route.
type Verification struct {
	Valid         bool   `json:"valid"`
	CertificateID string `json:"certificate_id" format:"uuid"`
}

// ListCertificatesQuery filters GET /api/v1/certificates.
type ListCertificatesQuery struct {
	UserID   string `query:"user_id" format:"uuid" doc:"A member's certificates (courses.certificate.read_all for someone else's)."`
	CourseID string `query:"course_id" format:"uuid"`
}

// VerifyQuery is the query of the public verification route.
type VerifyQuery struct {
	SHA256 string `query:"sha256" required:"true" pattern:"^[0-9a-fA-F]{64}$" doc:"The certificate's SHA-256, in hex."`
}

// certificateCanonical encodes c canonically and hashes it: the hash a
// certificate records and the verification route checks.
func certificateCanonical(c CertificateContent) (canonical string, sum string, err error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return "", "", fmt.Errorf("encoding certificate: %w", err)
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	h := sha256.Sum256(out)
	return string(out), hex.EncodeToString(h[:]), nil
}

func (p *Plugin) certificateRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "GET", Path: "/api/v1/certificates", Permission: PermEnrolSelf,
			Summary: "Certificates: the caller's own; with courses.certificate.read_all, the institution's (filters user_id, course_id)",
			Query:   ListCertificatesQuery{}, Paginated: true, Response: sdk.Page[Certificate]{},
			Handler: p.listCertificates,
		},
		{
			Method: "GET", Path: "/api/v1/certificates/{certificate_id}", Permission: PermEnrolSelf,
			Summary:  "A certificate: its content, the canonical text and its SHA-256",
			Response: Certificate{},
			Handler:  p.getCertificate,
		},
		{
			Method: "GET", Path: "/api/v1/certificates/{certificate_id}/verify", Public: true,
			Summary:  "Public verification: 200 when a certificate with this ID and SHA-256 was issued, 404 otherwise; reveals nothing else",
			Query:    VerifyQuery{},
			Response: Verification{},
			Handler:  p.verifyCertificate,
		},
	}
}

const certificateColumns = `id, enrolment_id, course_id, user_id, issued_at, content, sha256`

func scanCertificate(row pgx.Row) (Certificate, error) {
	var c Certificate
	var canonical *string
	if err := row.Scan(&c.ID, &c.EnrolmentID, &c.CourseID, &c.UserID, &c.IssuedAt, &canonical, &c.SHA256); err != nil {
		return Certificate{}, err
	}
	if canonical != nil { // NULL: erased
		c.Canonical = *canonical
		if err := json.Unmarshal([]byte(c.Canonical), &c.Content); err != nil {
			return Certificate{}, fmt.Errorf("certificate %s: decoding its content: %w", c.ID, err)
		}
	}
	c.IssuedAt = c.IssuedAt.UTC()
	c.VerifyPath = "/api/v1/certificates/" + c.ID + "/verify?sha256=" + c.SHA256
	return c, nil
}

// listCertificates handles GET /api/v1/certificates.
func (p *Plugin) listCertificates(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ListCertificatesQuery](req)
	if err != nil {
		return nil, err
	}
	userID, courseID := strings.ToLower(q.UserID), strings.ToLower(q.CourseID)
	if !req.Principal.Can(PermCertificateAll) {
		if userID != "" && userID != req.Principal.UserID {
			return nil, sdk.Errorf(sdk.ErrForbidden, "reading another member's certificates needs %s", PermCertificateAll)
		}
		if !req.Principal.IsUser() {
			return sdk.JSON(http.StatusOK, sdk.NewPage([]Certificate{}, page.Limit, certificateKey))
		}
		userID = req.Principal.UserID
	}
	at, afterID, after, err := page.AfterTime()
	if err != nil {
		return nil, err
	}
	var items []Certificate
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+certificateColumns+` FROM certificates
			WHERE ($2::uuid IS NULL OR user_id = $2) AND ($3::uuid IS NULL OR course_id = $3)
			  AND (NOT $4::bool OR (issued_at, id) < ($5::timestamptz, $6::uuid))
			ORDER BY issued_at DESC, id DESC LIMIT $1`,
			page.Limit+1, orNull(userID), orNull(courseID), after, at, orNull(afterID))
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Certificate, error) { return scanCertificate(r) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, certificateKey))
}

func certificateKey(c Certificate) []string { return sdk.TimeKey(c.IssuedAt, c.ID) }

// getCertificate handles GET /api/v1/certificates/{certificate_id}: the
// holder's own, or any with courses.certificate.read_all; otherwise 404.
func (p *Plugin) getCertificate(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("certificate_id")
	if err != nil {
		return nil, err
	}
	var c Certificate
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err = scanCertificate(tx.QueryRow(ctx, `SELECT `+certificateColumns+` FROM certificates WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !(req.Principal.IsUser() && c.UserID == req.Principal.UserID) && !req.Principal.Can(PermCertificateAll)) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no certificate %s", id)
	}
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, c)
}

// verifyCertificate handles the public GET
// /api/v1/certificates/{certificate_id}/verify?sha256=: it reads only the
// certificate_hashes table (IDs and hashes, outside row-level security) and
// answers the same 404 for an unknown ID and a wrong hash, so it reveals
// nothing but the yes the caller could already prove.
func (p *Plugin) verifyCertificate(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("certificate_id")
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[VerifyQuery](req)
	if err != nil {
		return nil, err
	}
	given := strings.ToLower(q.SHA256)
	var stored string
	err = p.env.DB.Pool.QueryRow(ctx, `SELECT sha256 FROM certificate_hashes WHERE id = $1`, id).Scan(&stored)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if stored == "" || subtle.ConstantTimeCompare([]byte(stored), []byte(given)) != 1 {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no certificate %s with this SHA-256 was issued", id).WithCode("certificate_not_verified")
	}
	return sdk.JSON(http.StatusOK, Verification{Valid: true, CertificateID: id})
}

// issueCertificate is the issue-certificate job, run by the kernel on each
// courses.course.completed.v1. It issues the enrolment's certificate once:
// a second run (a redelivered event, a retried attempt) finds it issued.
func (p *Plugin) issueCertificate(ctx context.Context, run *sdk.JobRun) error {
	if run.Event == nil {
		return sdk.Errorf(sdk.ErrInvalid, "issue-certificate runs on %s events, not on demand", EventCourseCompleted)
	}
	var in CourseCompleted
	if err := run.Event.Decode(&in); err != nil {
		return err
	}
	if !sdk.IsUUID(in.EnrolmentID) || !sdk.IsUUID(in.CourseID) || !sdk.IsUUID(in.UserID) || in.Version < 1 {
		return fmt.Errorf("event %s: enrolment_id, course_id and user_id must be UUIDs and version at least 1", run.Event.ID)
	}
	// Before the transaction: the kernel round trip should not hold it open.
	cfg, err := sdk.Config[Config](ctx, run)
	if err != nil {
		return err
	}
	return run.Tx(ctx, func(tx pgx.Tx) error {
		var status string
		var completedAt *time.Time
		err := tx.QueryRow(ctx, `SELECT status, completed_at FROM enrolments WHERE id = $1 FOR UPDATE`, in.EnrolmentID).Scan(&status, &completedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			run.SetOutput("enrolment " + in.EnrolmentID + " no longer exists: no certificate")
			return nil
		}
		if err != nil {
			return err
		}
		var existing string
		err = tx.QueryRow(ctx, `SELECT id FROM certificates WHERE enrolment_id = $1`, in.EnrolmentID).Scan(&existing)
		if err == nil {
			run.SetOutput("certificate " + existing + " was issued before")
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if status != "completed" || completedAt == nil {
			run.SetOutput("enrolment " + in.EnrolmentID + " is " + status + ", not completed: no certificate")
			return nil
		}
		content, err := versionContent(ctx, tx, in.CourseID, in.Version)
		if err != nil {
			return err
		}
		issuer := cfg.CertificateIssuer
		if issuer == "" {
			issuer = "institution " + run.TenantID
		}
		issued := now()
		cc := CertificateContent{
			CertificateID: uuid.Must(uuid.NewV7()).String(),
			CompletedAt:   completedAt.UTC().Format(time.RFC3339Nano),
			CourseID:      in.CourseID, CourseTitle: content.Title, CourseVersion: in.Version,
			EnrolmentID: in.EnrolmentID, IssuedAt: issued.Format(time.RFC3339Nano),
			Issuer: issuer, TenantID: run.TenantID, UserID: in.UserID,
		}
		canonical, sum, err := certificateCanonical(cc)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO certificates (id, enrolment_id, course_id, user_id, content, sha256, issued_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, cc.CertificateID, in.EnrolmentID, in.CourseID, in.UserID, canonical, sum, issued); err != nil {
			return fmt.Errorf("recording certificate: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO certificate_hashes (id, sha256) VALUES ($1, $2)`, cc.CertificateID, sum); err != nil {
			return fmt.Errorf("recording certificate hash: %w", err)
		}
		run.SetOutput("issued certificate " + cc.CertificateID)
		return run.Publish(ctx, tx, EventCertificateIssued, CertificateIssued{
			CertificateID: cc.CertificateID, CourseID: in.CourseID, UserID: in.UserID, SHA256: sum,
		})
	})
}
