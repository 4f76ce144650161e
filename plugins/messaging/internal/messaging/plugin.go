package messaging

import (
	"context"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Name is the plugin's name: its database schema is plugin_messaging.
const Name = "messaging"

// Version is the plugin's version.
const Version = "0.2.0"

// Permissions the plugin introduces.
const (
	PermSpaceRead        = "messaging.space.read"
	PermPost             = "messaging.post.write"
	PermModerate         = "messaging.space.moderate"
	PermAnnounce         = "messaging.announcement.write"
	PermSpaceManage      = "messaging.space.manage"
	PermNotificationRead = "messaging.notification.read"
	PermExplainAny       = "messaging.notification.explain_any"
)

// Events the plugin publishes.
const (
	EventAnnouncementPublished = "messaging.announcement.published.v1"
	EventNotificationsQueued   = "messaging.notifications.queued.v1"
	EventPostCreated           = "messaging.post.created.v1"
	EventReactionAdded         = "messaging.reaction.added.v1"
)

// PostCreated is the data of messaging.post.created.v1 (the telemetry
// plugin records it as a learning statement).
type PostCreated struct {
	PostID    string    `json:"post_id" format:"uuid"`
	SpaceID   string    `json:"space_id" format:"uuid"`
	SpaceKind string    `json:"space_kind" enum:"institution,course,cohort"`
	CourseID  string    `json:"course_id,omitempty" format:"uuid"`
	CohortID  string    `json:"cohort_id,omitempty" format:"uuid"`
	AuthorID  string    `json:"author_id" format:"uuid"`
	Kind      string    `json:"kind" enum:"post,announcement"`
	CreatedAt time.Time `json:"created_at"`
}

// ReactionAdded is the data of messaging.reaction.added.v1: a new reaction
// (the same emoji again changes nothing and publishes nothing).
type ReactionAdded struct {
	TargetType string    `json:"target_type" enum:"post,comment"`
	TargetID   string    `json:"target_id" format:"uuid"`
	PostID     string    `json:"post_id" format:"uuid"`
	SpaceID    string    `json:"space_id" format:"uuid"`
	CourseID   string    `json:"course_id,omitempty" format:"uuid"`
	CohortID   string    `json:"cohort_id,omitempty" format:"uuid"`
	UserID     string    `json:"user_id" format:"uuid"`
	Emoji      string    `json:"emoji" maxLength:"64"`
	CreatedAt  time.Time `json:"created_at"`
}

// AnnouncementPublished is the data of messaging.announcement.published.v1.
type AnnouncementPublished struct {
	PostID   string `json:"post_id" format:"uuid"`
	SpaceID  string `json:"space_id" format:"uuid"`
	AuthorID string `json:"author_id" format:"uuid"`
}

// NotificationsQueued is the data of messaging.notifications.queued.v1.
type NotificationsQueued struct {
	Email int `json:"email" minimum:"0" doc:"Emails newly waiting to be sent."`
	Push  int `json:"push" minimum:"0" doc:"Pushes newly waiting to be sent."`
}

//go:embed migrations/*.sql
var migrations embed.FS

// Plugin is the messaging plugin.
type Plugin struct {
	env   *sdk.Env
	op    Config // the operator's configuration (defaults and plugins.hcl)
	clock func() time.Time
	hub   *hub

	unsubKey           []byte
	ownVAPID           vapidKeys
	pushClient         *http.Client
	insecurePushClient *http.Client
}

var (
	_ sdk.Plugin       = (*Plugin)(nil)
	_ sdk.Provisioner  = (*Plugin)(nil)
	_ sdk.CleanerUpper = (*Plugin)(nil)
)

// New builds the plugin (lifecycle step 1: no I/O).
func New() *Plugin { return &Plugin{} }

// Provision keeps the environment, reads the operator's configuration,
// and derives the keys the plugin signs with.
func (p *Plugin) Provision(ctx context.Context, env *sdk.Env) error {
	if env.DB == nil {
		return errors.New("messaging needs its database")
	}
	p.env = env
	op, err := sdk.OperatorConfig[Config](env)
	if err != nil {
		return err
	}
	p.op = op
	master := []byte(env.DB.Pool.Config().ConnConfig.Password)
	if op.UnsubscribeKey == "" && len(master) < 16 {
		return errors.New("messaging needs a secret for its unsubscribe links: set unsubscribe_key (a secret setting) in its plugins.hcl block")
	}
	p.unsubKey = []byte(op.UnsubscribeKey)
	if op.UnsubscribeKey == "" {
		p.unsubKey = deriveKey(master, "unsubscribe")
	}
	if op.VAPIDPublicKey == "" || op.VAPIDPrivateKey == "" {
		if len(master) < 16 {
			return errors.New("messaging needs a VAPID key pair: set vapid_public_key and vapid_private_key")
		}
		if p.ownVAPID, err = deriveVAPID(master); err != nil {
			return fmt.Errorf("the VAPID key pair: %w", err)
		}
	}
	p.pushClient = pushClient(false)
	p.insecurePushClient = pushClient(true)
	p.hub = newHub(env.Logger, func(ctx context.Context) (*pgx.Conn, error) {
		c, err := env.DB.Pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		return c.Hijack(), nil
	}, p.loadInboxItem)
	return nil
}

// The plugin's own keys are derived, never stored: from the secret the
// kernel gives it (its database role's password, which the kernel derives
// from EDULURE_SECRET_KEY, the same on every replica), unless the operator
// sets them (unsubscribe_key, vapid_*; secret settings). Rotating the
// kernel's secret key without setting them changes both: older
// unsubscribe links stop working and browsers must subscribe again.

// deriveKey is HMAC-SHA256(master, label).
func deriveKey(master []byte, label string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("edulure-messaging/" + label))
	return m.Sum(nil)
}

// deriveVAPID makes the plugin's P-256 key pair from master.
func deriveVAPID(master []byte) (vapidKeys, error) {
	for i := range 16 {
		k, err := ecdh.P256().NewPrivateKey(deriveKey(master, fmt.Sprintf("vapid/%d", i)))
		if err != nil {
			continue // not a valid scalar (about 2^-32): the next
		}
		return vapidKeys{public: base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), private: base64.RawURLEncoding.EncodeToString(k.Bytes())}, nil
	}
	return vapidKeys{}, errors.New("no valid P-256 scalar derived")
}

// Cleanup stops the inbox listener.
func (p *Plugin) Cleanup(context.Context) error {
	if p.hub != nil {
		p.hub.close()
	}
	return nil
}

// config is the configuration in force for the scope's institution, with
// the operator-only settings from the operator's layer.
func (p *Plugin) config(ctx context.Context, s sdk.Scope) (Config, error) {
	cfg, err := sdk.Config[Config](ctx, s)
	if err != nil {
		return cfg, err
	}
	return cfg.withOperator(p.op), nil
}

// operatorConfig is the operator's layer over the defaults.
func (p *Plugin) operatorConfig() (Config, error) { return p.op, nil }

// decodeLayer lays an institution's settings (a JSON object) over cfg.
func decodeLayer(raw json.RawMessage, cfg *Config) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, cfg)
}

// Manifest declares the plugin to the kernel.
func (p *Plugin) Manifest() sdk.Manifest {
	var routes []sdk.Route
	for _, group := range [][]sdk.Route{
		p.spaceRoutes(), p.postRoutes(), p.commentRoutes(), p.reactionRoutes(), p.pollRoutes(),
		p.attachmentRoutes(), p.moderationRoutes(), p.inboxRoutes(), p.explainRoutes(), p.preferenceRoutes(), p.deviceRoutes(), p.unsubscribeRoutes(), p.webhookRoutes(),
		p.archiveRoutes(),
	} {
		routes = append(routes, group...)
	}
	all := []string{"admin", "instructor", "learner"}
	return sdk.Manifest{
		Name:        Name,
		Version:     Version,
		Description: "Community spaces, posts and comments, and notifications by email, web push and in-app.",
		Permissions: []sdk.Permission{
			{Name: PermSpaceRead, Description: "Read the spaces one belongs to, their posts and comments.", DefaultRoles: all},
			{Name: PermPost, Description: "Post, comment, react and vote in the spaces one belongs to.", DefaultRoles: all},
			{Name: PermModerate, Description: "Moderate the spaces one is a moderator of (pin, lock, hide).", DefaultRoles: []string{"admin", "instructor"}},
			{Name: PermAnnounce, Description: "Post announcements in the spaces one moderates.", DefaultRoles: []string{"admin", "instructor"}},
			{Name: PermSpaceManage, Description: "Manage every space of the institution: members, moderators, titles.", DefaultRoles: []string{"admin"}},
			{Name: PermNotificationRead, Description: "Read one's notifications, preferences and devices.", DefaultRoles: all},
			{Name: PermExplainAny, Description: "Explain the delivery of anyone's notification in the institution.", DefaultRoles: []string{"admin"}},
			{Name: PermArchiveRead, Description: "List and download the posts retention archived.", DefaultRoles: []string{"admin", "compliance_officer"}},
		},
		Routes: routes,
		Publishes: []sdk.EventType{
			{Type: EventAnnouncementPublished, Description: "An announcement was posted: every member of its space is notified (by the plugin's own subscription).", Schema: AnnouncementPublished{}},
			{Type: EventNotificationsQueued, Description: "Notifications wait to be sent by email or push: it starts the fan-out job for the institution.", Schema: NotificationsQueued{}},
			{Type: EventPostCreated, Description: "A member posted in a space (a post or an announcement).", Schema: PostCreated{}},
			{Type: EventReactionAdded, Description: "A member reacted to a post or a comment with an emoji.", Schema: ReactionAdded{}},
		},
		Subscribes: p.subscriptions(),
		Jobs: []sdk.Job{
			{Name: JobFanout, Description: "NotificationFanoutJob: sends the email and pushes that are due, gathers digests, throttles, retries.",
				Schedule: "* * * * *", PerTenant: true, Handler: p.fanout},
			{Name: JobFanoutNow, Description: "The fan-out, at once when notifications are queued.",
				OnEvent: EventNotificationsQueued, PerTenant: true, Handler: p.fanout},
			{Name: JobMaintenance, Description: "Removes push subscriptions not seen for device_stale_days, old send windows and feed snapshots.",
				Schedule: "17 4 * * *", PerTenant: true, Handler: p.maintenance},
		},
		Migrations:   migrations,
		Capabilities: []sdk.Capability{sdk.CapStorage},
		Config:       defaultConfig(),
		PersonalData: p.personalData(),
		Retention:    p.retention(),
	}
}

// subscriptions are the events the plugin handles.
func (p *Plugin) subscriptions() []sdk.Subscription {
	return []sdk.Subscription{
		{Type: EventUserCreated, Handler: p.userCreated},
		{Type: EventEmailVerified, Handler: p.emailVerified},
		{Type: EventPasswordReset, Handler: p.accountMail, MaxAttempts: MaxTransactionalAttempts},
		{Type: EventVerification, Handler: p.accountMail, MaxAttempts: MaxTransactionalAttempts},
		{Type: EventMFALocked, Handler: p.accountMail, MaxAttempts: MaxTransactionalAttempts},
		{Type: EventPasswordChanged, Handler: p.accountMail, MaxAttempts: MaxTransactionalAttempts},
		{Type: EventTenantCreated, Handler: p.tenantCreated},
		{Type: EventInvitationCreated, Handler: p.invitationCreated, MaxAttempts: MaxTransactionalAttempts},
		{Type: EventMemberJoined, Handler: p.memberJoined},
		{Type: EventMemberRolesChanged, Handler: p.memberJoined},
		{Type: EventMemberRemoved, Handler: p.memberRemoved},
		{Type: EventCoursePublished, Handler: p.coursePublished},
		{Type: EventEnrolmentCreated, Handler: p.enrolmentChanged},
		{Type: EventEnrolmentPromoted, Handler: p.enrolmentChanged},
		{Type: EventEnrolmentWithdrawn, Handler: p.enrolmentChanged},
		{Type: EventSubmissionGraded, Handler: p.submissionGraded},
		{Type: EventCertificateIssued, Handler: p.certificateIssued},
		{Type: EventOrderPaid, Handler: p.orderEvent},
		{Type: EventOrderRefunded, Handler: p.orderEvent},
		{Type: EventPaymentFailed, Handler: p.orderEvent},
		{Type: EventAnnouncementPublished, Handler: p.announcementPublished},
	}
}

// maintenance is the daily clean-up of an institution.
func (p *Plugin) maintenance(ctx context.Context, run *sdk.JobRun) error {
	cfg, err := p.config(ctx, run)
	if err != nil {
		return err
	}
	now := p.now()
	var culled, snapshots int64
	err = run.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		if culled, err = cullDevices(ctx, tx, cfg, now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM feed_snapshots WHERE created_at < $1`, now.Add(-time.Hour))
		snapshots = tag.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	err = p.env.DB.InTenant(ctx, "", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM send_windows WHERE window_start < $1`, now.Add(-24*time.Hour))
		return err
	})
	run.SetOutput(fmt.Sprintf("%d stale device(s) removed, %d feed snapshot(s) removed", culled, snapshots))
	return err
}
