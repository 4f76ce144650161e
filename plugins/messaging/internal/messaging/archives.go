package messaging

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/edulure/edulure/sdk"
)

// Archives (docs/messaging.md, "Retention"): what the retention's archive
// action stored, listed and read back by those who hold
// messaging.archive.read. Each archive is one batch's posts, gzipped JSON
// lines, written once under sdk.RetentionArchiveKey.

// PermArchiveRead reads the archives retention wrote.
const PermArchiveRead = "messaging.archive.read"

// Archive is one archive object.
type Archive struct {
	Key       string    `json:"key" doc:"retention/<class>/<date>/<batch>.jsonl.gz"`
	Class     string    `json:"class" doc:"the data class archived (posts)"`
	Day       string    `json:"day" format:"date" doc:"the day (UTC) the batch was archived"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256" doc:"the object's SHA-256 as the kernel stored it, lowercase hex"`
	CreatedAt time.Time `json:"created_at"`
}

// ArchiveQuery names an archive to download.
type ArchiveQuery struct {
	Key string `query:"key" required:"true" maxLength:"200" doc:"an archive's key, as the list gives it"`
}

// ArchiveDownload is a signed URL to an archive.
type ArchiveDownload struct {
	Archive
	URL       string    `json:"url" doc:"GET it without other credentials until expires_at (a path under the API's base URL, or the store's URL)"`
	ExpiresAt time.Time `json:"expires_at"`
}

// archiveKey is the shape of the keys the SDK's archive writes.
var archiveKey = regexp.MustCompile(`^retention/([a-z][a-z0-9_]{0,62})/(\d{4}-\d{2}-\d{2})/[0-9a-f-]{36}\.jsonl\.gz$`)

// archiveExpiry is how long a download URL works.
const archiveExpiry = 5 * time.Minute

func (p *Plugin) archiveRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "GET", Path: "/api/v1/messaging/archives", Permission: PermArchiveRead, Paginated: true,
			Summary: "The archives retention wrote (each a batch of expired posts), in key order: class, then day", Response: sdk.Page[Archive]{}, Handler: p.listArchives},
		{Method: "GET", Path: "/api/v1/messaging/archives/download", Permission: PermArchiveRead, Query: ArchiveQuery{},
			Summary: "A signed URL to read one archive (audited)", Response: ArchiveDownload{}, Handler: p.downloadArchive},
	}
}

func archiveOf(o sdk.Object) Archive {
	a := Archive{Key: o.Key, Size: o.Size, SHA256: o.SHA256, CreatedAt: o.Modified.UTC()}
	if m := archiveKey.FindStringSubmatch(o.Key); m != nil {
		a.Class, a.Day = m[1], m[2]
	}
	return a
}

// listArchives pages the institution's archive objects with the store's
// own cursor inside the API's.
func (p *Plugin) listArchives(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	pr, err := req.Page()
	if err != nil {
		return nil, err
	}
	cursor := ""
	switch len(pr.After) {
	case 0:
	case 1:
		cursor = pr.After[0]
	default:
		return nil, sdk.Invalid(sdk.FieldError{Field: "cursor", Message: "is not a cursor of this list"})
	}
	page, err := sdk.Storage(req).List(ctx, sdk.RetentionArchivePrefix, cursor, pr.Limit)
	if errors.Is(err, sdk.ErrInvalid) {
		return nil, sdk.Invalid(sdk.FieldError{Field: "cursor", Message: "is not a cursor of this list"})
	}
	if err != nil {
		return nil, err
	}
	items := make([]Archive, 0, len(page.Objects)+1)
	for _, o := range page.Objects {
		items = append(items, archiveOf(o))
	}
	if page.NextCursor == "" || len(items) == 0 {
		return sdk.JSON(http.StatusOK, sdk.Page[Archive]{Items: items})
	}
	// One more item than the page holds tells NewPage there is a next
	// page, whose cursor carries the store's.
	return sdk.JSON(http.StatusOK, sdk.NewPage(append(items, Archive{}), len(items), func(Archive) []string { return []string{page.NextCursor} }))
}

func (p *Plugin) downloadArchive(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	q, err := sdk.Query[ArchiveQuery](req)
	if err != nil {
		return nil, err
	}
	key := strings.TrimSpace(q.Key)
	if !archiveKey.MatchString(key) {
		return nil, sdk.Invalid(sdk.FieldError{Field: "key", Message: "must be an archive's key, such as retention/posts/2026-12-01/<batch>.jsonl.gz"})
	}
	obj, err := sdk.Storage(req).Stat(ctx, key)
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no archive %s in this institution's storage", key).WithCode("archive_not_found")
	}
	if err != nil {
		return nil, err
	}
	url, err := sdk.Storage(req).SignedURL(ctx, key, http.MethodGet, archiveExpiry)
	if err != nil {
		return nil, err
	}
	if err := p.audit(ctx, req, "messaging.archive.downloaded", "archive", key, map[string]any{"sha256": obj.SHA256, "size": obj.Size}); err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, ArchiveDownload{Archive: archiveOf(obj), URL: url, ExpiresAt: p.now().Add(archiveExpiry)})
}
