package identity

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	passwordvalidator "github.com/wagslane/go-password-validator"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/sdk"
)

// User is a person with a login.
type User struct {
	ID          uuid.UUID `json:"id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	Operator    bool      `json:"operator"`
	MFAEnabled  bool      `json:"mfa_enabled"`
	// EmailVerified: the owner has shown they read mail sent to Email.
	EmailVerified bool       `json:"email_verified"`
	CreatedAt     time.Time  `json:"created_at"`
	LockedUntil   *time.Time `json:"-"`

	passwordHash string
	failedLogins int
}

// Argon2id parameters: OWASP's recommended m=19 MiB, t=2, p=1.
var passwordParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// MinPasswordEntropy is the least estimated entropy, in bits, of an accepted password.
const MinPasswordEntropy = 50

// ValidateEmail checks an address and returns it normalised (trimmed).
func ValidateEmail(email string) (string, *sdk.FieldError) {
	email = strings.TrimSpace(email)
	fe := &sdk.FieldError{Field: "email", Message: "must be a valid email address such as ada@example.edu"}
	if email == "" || len(email) > 254 {
		return "", fe
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
		return "", fe
	}
	return email, nil
}

// ValidatePassword rejects weak passwords with a reason.
func ValidatePassword(field, password, email string) *sdk.FieldError {
	n := utf8.RuneCountInString(password)
	switch {
	case n < 10:
		return &sdk.FieldError{Field: field, Message: "must be at least 10 characters"}
	case len(password) > 256:
		return &sdk.FieldError{Field: field, Message: "must be at most 256 bytes"}
	case email != "" && strings.Contains(strings.ToLower(password), strings.ToLower(strings.Split(email, "@")[0])) && len(strings.Split(email, "@")[0]) >= 4:
		return &sdk.FieldError{Field: field, Message: "must not contain your email address"}
	}
	if isCommonPassword(password) {
		return &sdk.FieldError{Field: field, Message: "is one of the most commonly used passwords; choose another"}
	}
	if err := passwordvalidator.Validate(password, MinPasswordEntropy); err != nil {
		return &sdk.FieldError{Field: field, Message: "is too weak: " + strings.TrimSuffix(err.Error(), ".")}
	}
	return nil
}

// ValidateDisplayName checks a display name.
func ValidateDisplayName(name string) (string, *sdk.FieldError) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 120 || strings.ContainsAny(name, "\x00\r\n") {
		return "", &sdk.FieldError{Field: "display_name", Message: "must be 1 to 120 characters on one line"}
	}
	return name, nil
}

// HashPassword hashes with argon2id.
func HashPassword(password string) (string, error) {
	defer releaseMemorySoon()
	return argon2id.CreateHash(password, passwordParams)
}

// dummyHash is compared against when no user matches, so that a login for an
// unknown email takes as long as one for a known email.
var dummyHash, _ = argon2id.CreateHash("edulure-dummy-password", passwordParams)

// CreateUser creates a user. The caller has validated the inputs.
func CreateUser(ctx context.Context, tx pgx.Tx, email, displayName, password string, operator bool) (User, error) {
	hash, err := HashPassword(password)
	if err != nil {
		return User{}, err
	}
	u := User{ID: uuid.Must(uuid.NewV7()), Email: email, DisplayName: displayName, Operator: operator}
	err = tx.QueryRow(ctx, `INSERT INTO kernel.users (id, email, display_name, password_hash, is_operator)
		VALUES ($1, $2, $3, $4, $5) RETURNING created_at`, u.ID, email, displayName, hash, operator).Scan(&u.CreatedAt)
	if database.IsUniqueViolation(err, "users_email_key") {
		return User{}, sdk.Errorf(sdk.ErrConflict, "an account with email %s already exists", email).WithCode("email-taken")
	}
	if err != nil {
		return User{}, fmt.Errorf("creating user: %w", err)
	}
	return u, nil
}

const userColumns = `id, email, display_name, is_operator, mfa_enabled_at IS NOT NULL, email_verified_at IS NOT NULL, created_at, locked_until, password_hash, failed_logins`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.DisplayName, &u.Operator, &u.MFAEnabled, &u.EmailVerified, &u.CreatedAt, &u.LockedUntil, &u.passwordHash, &u.failedLogins)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, sdk.Errorf(sdk.ErrNotFound, "no such user")
	}
	return u, err
}

// GetUser loads a user by ID.
func GetUser(ctx context.Context, q database.Querier, id uuid.UUID) (User, error) {
	return scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM kernel.users WHERE id = $1`, id))
}

// GetUserByEmail loads a user by email, case-insensitively.
func GetUserByEmail(ctx context.Context, q database.Querier, email string) (User, error) {
	return scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM kernel.users WHERE lower(email) = lower($1)`, email))
}

// Lockout policy: the FreeFailures-th consecutive failure locks the account,
// and each further failure locks it for twice as long (at most an hour).
const (
	FreeFailures = 5
	maxLock      = time.Hour
)

// ErrLocked is returned by CheckPassword while an account is locked.
type ErrLocked struct{ Until time.Time }

func (e ErrLocked) Error() string { return "account locked until " + e.Until.Format(time.RFC3339) }

// CheckPassword verifies a login. user may be the zero User when the email
// matched nobody; the comparison still runs. Failures are counted and lock
// the account; success resets the count. It returns sdk.ErrUnauthorized for
// a wrong password or unknown email (indistinguishably) and ErrLocked while
// locked.
func CheckPassword(ctx context.Context, q database.Querier, u User, password string, now time.Time) error {
	if u.LockedUntil != nil && now.Before(*u.LockedUntil) {
		return ErrLocked{Until: *u.LockedUntil}
	}
	hash := u.passwordHash
	if u.ID == uuid.Nil {
		hash = dummyHash
	}
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	releaseMemorySoon()
	if err != nil {
		return fmt.Errorf("comparing password: %w", err)
	}
	if u.ID == uuid.Nil {
		return sdk.Errorf(sdk.ErrUnauthorized, "email or password is incorrect").WithCode("bad-credentials")
	}
	if ok {
		if u.failedLogins > 0 || u.LockedUntil != nil {
			_, err := q.Exec(ctx, `UPDATE kernel.users SET failed_logins = 0, locked_until = NULL WHERE id = $1`, u.ID)
			return err
		}
		return nil
	}
	failures := u.failedLogins + 1
	var lockedUntil *time.Time
	if failures >= FreeFailures {
		d := time.Minute << min(failures-FreeFailures, 10)
		t := now.Add(min(d, maxLock))
		lockedUntil = &t
	}
	if _, err := q.Exec(ctx, `UPDATE kernel.users SET failed_logins = $2, locked_until = $3 WHERE id = $1`, u.ID, failures, lockedUntil); err != nil {
		return err
	}
	if lockedUntil != nil {
		return ErrLocked{Until: *lockedUntil}
	}
	return sdk.Errorf(sdk.ErrUnauthorized, "email or password is incorrect").WithCode("bad-credentials")
}

// SetPassword replaces a user's password and clears any lockout.
func SetPassword(ctx context.Context, q database.Querier, userID uuid.UUID, password string) error {
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `UPDATE kernel.users SET password_hash = $2, failed_logins = 0, locked_until = NULL, updated_at = now() WHERE id = $1`, userID, hash)
	return err
}

// commonStems are the bases of the most used passwords in public breach
// corpora; a password that is one of them plus digits or symbols is refused
// whatever its estimated entropy.
var commonStems = map[string]bool{
	"password": true, "passw0rd": true, "qwerty": true, "qwertyuiop": true, "letmein": true, "welcome": true,
	"iloveyou": true, "admin": true, "administrator": true, "abc": true, "abcdef": true, "monkey": true,
	"dragon": true, "football": true, "baseball": true, "sunshine": true, "princess": true, "master": true,
	"login": true, "starwars": true, "whatever": true, "trustno": true, "superman": true, "shadow": true,
	"michael": true, "jennifer": true, "hunter": true, "freedom": true, "changeme": true, "secret": true,
	"edulure": true, "student": true, "teacher": true, "university": true, "school": true, "summer": true,
	"winter": true, "spring": true, "autumn": true, "asdfgh": true, "zxcvbn": true, "qazwsx": true,
}

func isCommonPassword(pw string) bool {
	stem := strings.ToLower(strings.TrimRightFunc(pw, func(r rune) bool {
		return (r >= '0' && r <= '9') || strings.ContainsRune("!@#$%^&*?._-+= ", r)
	}))
	return commonStems[stem] || strings.Trim(strings.ToLower(pw), "0123456789") == ""
}
