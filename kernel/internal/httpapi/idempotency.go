package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/problem"
)

// idempotency honours Idempotency-Key on POSTs that create: the first
// successful response is stored and replayed for a retry with the same key
// and the same body; the same key with another body is a 422; a retry while
// the first request still runs is a 409. Failed requests free the key.
//
// The stored answers hold secrets (an API key, an invitation token), so
// they are sealed under EDULURE_SECRET_KEY, bound to their scope and key,
// and kept for idempotencyTTL: after that the key is free again, and
// pruneIdempotencyKeys deletes the row.
func (s *Server) idempotency(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get("Idempotency-Key")
		if key == "" {
			return next(c)
		}
		if len(key) > 255 {
			return problem.New(http.StatusBadRequest, "bad-idempotency-key", "Idempotency-Key must be at most 255 characters")
		}
		// The key is stored as text: bytes that are not UTF-8 would fail
		// the insert (SQLSTATE 22021) as a 500.
		if why := textProblem(key); why != "" {
			return problem.New(http.StatusBadRequest, "bad-idempotency-key", "Idempotency-Key "+why)
		}
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return bodyReadError(err)
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		p := principalOf(c)
		kind, id := p.Actor()
		scope := kind + ":" + id + ":" + p.TenantID.String()
		h := sha256.New()
		h.Write([]byte(c.Request().Method + " " + c.Request().URL.Path + "\n"))
		h.Write(body)
		hash := h.Sum(nil)
		ctx := c.Request().Context()

		// A key whose record has expired is taken over as if new.
		tag, err := s.Pool.Exec(ctx, `INSERT INTO kernel.idempotency_keys AS k (scope, key, method, path, request_hash) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (scope, key) DO UPDATE SET method = EXCLUDED.method, path = EXCLUDED.path, request_hash = EXCLUDED.request_hash,
				status = NULL, headers = NULL, body = NULL, created_at = now()
			WHERE k.created_at <= now() - $6::interval`, scope, key, c.Request().Method, c.Request().URL.Path, hash, idempotencyTTL.String())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var storedHash, storedBody []byte
			var status *int
			var headers map[string]string
			err := s.Pool.QueryRow(ctx, `SELECT request_hash, status, headers, body FROM kernel.idempotency_keys WHERE scope = $1 AND key = $2`, scope, key).
				Scan(&storedHash, &status, &headers, &storedBody)
			if errors.Is(err, pgx.ErrNoRows) {
				return problem.New(http.StatusConflict, "idempotency-key-in-use", "a request with this Idempotency-Key just failed; retry")
			}
			if err != nil {
				return err
			}
			if !bytes.Equal(storedHash, hash) {
				return problem.New(http.StatusUnprocessableEntity, "idempotency-key-reused", "this Idempotency-Key was used for a different request")
			}
			if status == nil {
				p := problem.New(http.StatusConflict, "idempotency-key-in-use", "a request with this Idempotency-Key is still being processed")
				p.RetryAfter = 1
				return p
			}
			body, err := s.Sealer.OpenStoredAnswer(scope, key, storedBody)
			if err != nil {
				return err
			}
			for k, v := range headers {
				c.Response().Header().Set(k, v)
			}
			c.Response().Header().Set("Idempotent-Replayed", "true")
			return c.Blob(*status, headers["Content-Type"], body)
		}

		rec := &recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		err = next(c)
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		status := c.Response().Status
		if err != nil || status >= 400 {
			s.Pool.Exec(cleanup, `DELETE FROM kernel.idempotency_keys WHERE scope = $1 AND key = $2`, scope, key) //nolint:errcheck
			return err
		}
		headers := map[string]string{"Content-Type": c.Response().Header().Get(echo.HeaderContentType)}
		hj, _ := json.Marshal(headers)
		if _, err := s.Pool.Exec(cleanup, `UPDATE kernel.idempotency_keys SET status = $3, headers = $4, body = $5 WHERE scope = $1 AND key = $2`,
			scope, key, status, hj, s.Sealer.SealStoredAnswer(scope, key, rec.buf.Bytes())); err != nil {
			s.requestLogger(c).Warn("storing idempotent response", "error", err)
		}
		return nil
	}
}

type recorder struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}

// idempotencyTTL is how long an Idempotency-Key's answer is kept and
// replayed.
const idempotencyTTL = 24 * time.Hour

// pruneIdempotencyKeys deletes expired Idempotency-Key records, and returns
// how many.
func (s *Server) pruneIdempotencyKeys(ctx context.Context) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM kernel.idempotency_keys WHERE created_at <= now() - $1::interval`, idempotencyTTL.String())
	return tag.RowsAffected(), err
}

// pruneLoop prunes expired Idempotency-Key records every hour until ctx ends.
func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := s.pruneIdempotencyKeys(ctx); err != nil && ctx.Err() == nil {
			s.Logger.Warn("pruning expired Idempotency-Key records", "error", err)
		} else if n > 0 {
			s.Logger.Debug("pruned expired Idempotency-Key records", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
