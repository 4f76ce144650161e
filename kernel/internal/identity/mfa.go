package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/edulure/edulure/kernel/internal/opaque"
	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/sdk"
)

// TOTP settings: RFC 6238 defaults, which every authenticator app supports.
const (
	totpPeriod = 30
	totpSkew   = 1 // accept the previous and next step too
	// RecoveryCodeCount codes are issued at enrolment.
	RecoveryCodeCount = 10
)

// TOTPEnrolment is what a user needs to add the account to an authenticator.
type TOTPEnrolment struct {
	Secret     string `json:"secret"`
	OTPAuthURL string `json:"otpauth_url"`
}

func mfaAD(userID uuid.UUID) []byte { return []byte("totp:" + userID.String()) }

// BeginTOTP generates a new pending TOTP secret for a user without MFA.
func BeginTOTP(ctx context.Context, tx pgx.Tx, sealer *seal.Sealer, issuer string, u User) (TOTPEnrolment, error) {
	if u.MFAEnabled {
		return TOTPEnrolment{}, sdk.Errorf(sdk.ErrConflict, "two-factor authentication is already enabled; disable it first to enrol a new device").WithCode("mfa-already-enabled")
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: u.Email, Period: totpPeriod, Algorithm: otp.AlgorithmSHA1, Digits: otp.DigitsSix})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("generating TOTP secret: %w", err)
	}
	_, err = tx.Exec(ctx, `UPDATE kernel.users SET mfa_secret = $2, mfa_enabled_at = NULL, mfa_last_step = 0, updated_at = now() WHERE id = $1`,
		u.ID, sealer.Seal([]byte(key.Secret()), mfaAD(u.ID)))
	if err != nil {
		return TOTPEnrolment{}, err
	}
	return TOTPEnrolment{Secret: key.Secret(), OTPAuthURL: key.URL()}, nil
}

// ErrBadCode is a wrong, expired or replayed second-factor code.
var ErrBadCode = sdk.Errorf(sdk.ErrUnauthorized, "the code is not valid (wrong, expired or already used)").WithCode("invalid-mfa-code")

// CheckTOTP verifies a code for the user's secret (pending or enabled) and
// records its time step, so the same code is never accepted twice.
func CheckTOTP(ctx context.Context, tx pgx.Tx, sealer *seal.Sealer, userID uuid.UUID, code string, now time.Time) error {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return ErrBadCode
	}
	var sealed []byte
	var last int64
	err := tx.QueryRow(ctx, `SELECT mfa_secret, mfa_last_step FROM kernel.users WHERE id = $1 FOR UPDATE`, userID).Scan(&sealed, &last)
	if err != nil {
		return err
	}
	if sealed == nil {
		return sdk.Errorf(sdk.ErrConflict, "no authenticator is enrolled; start enrolment first").WithCode("mfa-not-enrolled")
	}
	secret, err := sealer.Open(sealed, mfaAD(userID))
	if err != nil {
		return err
	}
	step := now.Unix() / totpPeriod
	for off := int64(-totpSkew); off <= totpSkew; off++ {
		s := step + off
		want, err := totp.GenerateCodeCustom(string(secret), time.Unix(s*totpPeriod, 0), totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			if s <= last {
				return ErrBadCode // replay of an accepted (or older) code
			}
			_, err := tx.Exec(ctx, `UPDATE kernel.users SET mfa_last_step = $2 WHERE id = $1`, userID, s)
			return err
		}
	}
	return ErrBadCode
}

// EnableTOTP marks the pending secret confirmed and issues fresh recovery codes.
func EnableTOTP(ctx context.Context, tx pgx.Tx, userID uuid.UUID) ([]string, error) {
	if _, err := tx.Exec(ctx, `UPDATE kernel.users SET mfa_enabled_at = now(), updated_at = now() WHERE id = $1`, userID); err != nil {
		return nil, err
	}
	return NewRecoveryCodes(ctx, tx, userID)
}

// NewRecoveryCodes replaces the user's recovery codes.
func NewRecoveryCodes(ctx context.Context, tx pgx.Tx, userID uuid.UUID) ([]string, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM kernel.mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
		return nil, err
	}
	codes := make([]string, RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, 10)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:12]
		codes[i] = s[:4] + "-" + s[4:8] + "-" + s[8:]
		if _, err := tx.Exec(ctx, `INSERT INTO kernel.mfa_recovery_codes (user_id, code_hash) VALUES ($1, $2)`, userID, opaque.Hash(normaliseRecovery(codes[i]))); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

func normaliseRecovery(code string) string {
	return strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
}

// UseRecoveryCode spends one recovery code.
func UseRecoveryCode(ctx context.Context, tx pgx.Tx, userID uuid.UUID, code string) error {
	tag, err := tx.Exec(ctx, `UPDATE kernel.mfa_recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`,
		userID, opaque.Hash(normaliseRecovery(code)))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return sdk.Errorf(sdk.ErrUnauthorized, "the recovery code is not valid or was already used").WithCode("invalid-recovery-code")
	}
	return nil
}

// DisableMFA removes the second factor and its recovery codes.
func DisableMFA(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	if _, err := tx.Exec(ctx, `UPDATE kernel.users SET mfa_secret = NULL, mfa_enabled_at = NULL, updated_at = now() WHERE id = $1`, userID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM kernel.mfa_recovery_codes WHERE user_id = $1`, userID)
	return err
}

// Challenge is the pending second step of a login.
type Challenge struct {
	UserID   uuid.UUID
	TenantID *uuid.UUID
}

// ChallengePrefix marks MFA challenge tokens.
const ChallengePrefix = "edm_"

// maxChallengeAttempts wrong codes spend a challenge.
const maxChallengeAttempts = 5

// NewChallenge issues a 5-minute token for the second step of a login.
func NewChallenge(ctx context.Context, tx pgx.Tx, c Challenge) (string, error) {
	tok, hash := opaque.New(ChallengePrefix)
	_, err := tx.Exec(ctx, `INSERT INTO kernel.mfa_challenges (token_hash, user_id, tenant_id, expires_at) VALUES ($1, $2, $3, now() + interval '5 minutes')`,
		hash, c.UserID, c.TenantID)
	return tok, err
}

// ErrChallenge is an unknown, expired, spent or exhausted challenge token.
var ErrChallenge = sdk.Errorf(sdk.ErrUnauthorized, "the MFA token is not valid or has expired; log in again").WithCode("invalid-mfa-token")

// GetChallenge loads and locks a live challenge.
func GetChallenge(ctx context.Context, tx pgx.Tx, token string) (Challenge, error) {
	var c Challenge
	err := tx.QueryRow(ctx, `SELECT user_id, tenant_id FROM kernel.mfa_challenges
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() AND attempts < $2 FOR UPDATE`, opaque.Hash(token), maxChallengeAttempts).
		Scan(&c.UserID, &c.TenantID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Challenge{}, ErrChallenge
	}
	return c, err
}

// FailChallenge counts a wrong code against a challenge.
func FailChallenge(ctx context.Context, q pgx.Tx, token string) error {
	_, err := q.Exec(ctx, `UPDATE kernel.mfa_challenges SET attempts = attempts + 1 WHERE token_hash = $1`, opaque.Hash(token))
	return err
}

// SpendChallenge marks a challenge used.
func SpendChallenge(ctx context.Context, q pgx.Tx, token string) error {
	_, err := q.Exec(ctx, `UPDATE kernel.mfa_challenges SET used_at = now() WHERE token_hash = $1`, opaque.Hash(token))
	return err
}

// Account-level lockout of second factors. A challenge allows
// maxChallengeAttempts wrong codes, but someone holding the password can
// open as many challenges as they like; so wrong codes (TOTP or recovery)
// are also counted on the account, in Postgres, which every replica shares.
// The FreeMFAFailures-th in a row locks every second-factor check of the
// account for mfaFirstLock, and each further failure (made once a lock has
// passed) for twice as long, at most maxMFALock. A right code clears the
// count. While locked no code is checked, so guesses neither count nor pass.
const (
	FreeMFAFailures = 10
	mfaFirstLock    = 5 * time.Minute
	maxMFALock      = time.Hour
)

// ErrMFALocked is returned while an account's second factor is locked.
type ErrMFALocked struct{ Until time.Time }

func (e ErrMFALocked) Error() string {
	return "two-factor sign-in locked until " + e.Until.Format(time.RFC3339)
}

// CheckMFALock locks the user's row for the check that follows and returns
// ErrMFALocked while the second factor is locked.
func CheckMFALock(ctx context.Context, tx pgx.Tx, userID uuid.UUID, now time.Time) error {
	var until *time.Time
	if err := tx.QueryRow(ctx, `SELECT mfa_locked_until FROM kernel.users WHERE id = $1 FOR UPDATE`, userID).Scan(&until); err != nil {
		return err
	}
	if until != nil && now.Before(*until) {
		return ErrMFALocked{Until: *until}
	}
	return nil
}

// FailSecondFactor counts a wrong second factor against the account and
// returns the consecutive failures and, when this failure locked the
// account, until when.
func FailSecondFactor(ctx context.Context, tx pgx.Tx, userID uuid.UUID, now time.Time) (int, *time.Time, error) {
	var failures int
	if err := tx.QueryRow(ctx, `UPDATE kernel.users SET mfa_failures = mfa_failures + 1 WHERE id = $1 RETURNING mfa_failures`, userID).Scan(&failures); err != nil {
		return 0, nil, err
	}
	if failures < FreeMFAFailures {
		return failures, nil, nil
	}
	d := mfaFirstLock << min(failures-FreeMFAFailures, 10)
	until := now.Add(min(d, maxMFALock))
	if _, err := tx.Exec(ctx, `UPDATE kernel.users SET mfa_locked_until = $2 WHERE id = $1`, userID, until); err != nil {
		return 0, nil, err
	}
	return failures, &until, nil
}

// ClearSecondFactorFailures forgets the wrong codes after a right one.
func ClearSecondFactorFailures(ctx context.Context, tx pgx.Tx, userID uuid.UUID) error {
	_, err := tx.Exec(ctx, `UPDATE kernel.users SET mfa_failures = 0, mfa_locked_until = NULL WHERE id = $1 AND (mfa_failures <> 0 OR mfa_locked_until IS NOT NULL)`, userID)
	return err
}
