package messaging

import (
	"embed"
	"net/http"

	"github.com/edulure/edulure/sdk"
)

// Name is the plugin's name: its database schema is plugin_messaging.
const Name = "messaging"

// Permissions the plugin introduces.
const (
	PermRead  = "messaging.item.read"
	PermWrite = "messaging.item.write"
)

// EventItemCreated is published with each new item, in its transaction.
const EventItemCreated = "messaging.item.created.v1"

//go:embed migrations/*.sql
var migrations embed.FS

// Plugin is the messaging plugin.
type Plugin struct{}

var _ sdk.Plugin = (*Plugin)(nil)

// New builds the plugin (lifecycle step 1: no I/O).
func New() *Plugin { return &Plugin{} }

// Config is the plugin's configuration. The value in the manifest holds
// the defaults; the operator's block in plugins.hcl overrides them, and
// each institution's own settings override both. The kernel checks every
// layer against the tags.
type Config struct {
	RetentionDays int `json:"retention_days" minimum:"0" maximum:"3650" doc:"Items older than this many days are deleted nightly; 0 keeps them."`
}

// Manifest declares the plugin to the kernel.
func (p *Plugin) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:        Name,
		Version:     "0.1.0",
		Description: "Items per institution.",
		Permissions: []sdk.Permission{
			{Name: PermRead, Description: "List items.", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: PermWrite, Description: "Create items.", DefaultRoles: []string{"admin", "instructor"}},
		},
		Routes: []sdk.Route{
			{
				Method: "POST", Path: "/api/v1/messaging/items", Permission: PermWrite,
				Summary: "Create an item", Status: http.StatusCreated,
				Request: CreateItem{}, Response: Item{},
				Handler: p.createItem,
			},
			{
				Method: "GET", Path: "/api/v1/messaging/items", Permission: PermRead,
				Summary:   "The institution's items, newest first",
				Paginated: true, Response: sdk.Page[Item]{},
				Handler: p.listItems,
			},
		},
		Publishes: []sdk.EventType{
			{Type: EventItemCreated, Description: "An item was created.", Schema: ItemCreated{}},
		},
		Jobs: []sdk.Job{
			{
				Name: PurgeJob, Description: "Delete the items older than the institution's retention_days.",
				Schedule: "30 3 * * *", PerTenant: true, Handler: p.purge,
			},
		},
		Migrations: migrations,
		Config:     Config{RetentionDays: 365},
		// The personal data the plugin holds: the SDK exports and erases it
		// when the kernel asks (a person's access or erasure request, an
		// institution leaving), and plugintest fails the tests while a
		// column that looks personal is not described here.
		PersonalData: []sdk.DataClass{
			{
				Name: "items", Table: "items",
				Purpose:   "Items members of the institution create.",
				Retention: "Kept with the institution; the creator's ID becomes a pseudonym when they are erased.",
				Columns: []sdk.PersonalColumn{
					{Name: "created_by", Kind: sdk.UserRef, Description: "The user (or API key) that created it."},
				},
				// An item's title names a thing, not a person.
				NotPersonal: []string{"title"},
			},
		},
	}
}
