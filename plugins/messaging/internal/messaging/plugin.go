package messaging

import (
	"context"
	"crypto/rand"
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
const Version = "0.1.0"

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
)

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
// and makes (once, platform-wide) the keys the plugin signs with.
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
	unsub, _, err := p.ensureKey(ctx, "unsubscribe", func() ([]byte, string, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, "", err
	})
	if err != nil {
		return fmt.Errorf("the unsubscribe key: %w", err)
	}
	p.unsubKey = unsub
	priv, pub, err := p.ensureKey(ctx, "vapid", newVAPIDPair)
	if err != nil {
		return fmt.Errorf("the VAPID key pair: %w", err)
	}
	p.ownVAPID = vapidKeys{public: pub, private: base64.RawURLEncoding.EncodeToString(priv)}
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

// ensureKey reads a key of the plugin's, making it the first time (two
// replicas starting at once keep the first one written).
func (p *Plugin) ensureKey(ctx context.Context, name string, make func() ([]byte, string, error)) ([]byte, string, error) {
	secret, public, err := make()
	if err != nil {
		return nil, "", err
	}
	err = p.env.DB.InTenant(ctx, "", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO keys (name, secret, public) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`, name, secret, public); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT secret, public FROM keys WHERE name = $1`, name).Scan(&secret, &public)
	})
	return secret, public, err
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
		},
		Routes: routes,
		Publishes: []sdk.EventType{
			{Type: EventAnnouncementPublished, Description: "An announcement was posted: every member of its space is notified (by the plugin's own subscription).", Schema: AnnouncementPublished{}},
			{Type: EventNotificationsQueued, Description: "Notifications wait to be sent by email or push: it starts the fan-out job for the institution.", Schema: NotificationsQueued{}},
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
	}
}

// subscriptions are the events the plugin handles.
func (p *Plugin) subscriptions() []sdk.Subscription {
	return []sdk.Subscription{
		{Type: EventUserCreated, Handler: p.userCreated},
		{Type: EventPasswordReset, Handler: p.accountMail, MaxAttempts: MaxTransactionalAttempts},
		{Type: EventVerification, Handler: p.accountMail, MaxAttempts: MaxTransactionalAttempts},
		{Type: EventMFALocked, Handler: p.accountMail, MaxAttempts: MaxTransactionalAttempts},
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
