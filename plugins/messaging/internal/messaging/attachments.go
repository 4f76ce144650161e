package messaging

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Attachments: a member asks for an upload (POST /spaces/{space_id}/attachments)
// and gets a signed PUT URL for attachments/<uploader>/<id> in the
// institution's object storage; the file is then named in a post's
// attachments, which checks it was uploaded (Bucket.Stat) and records its
// size and hash. Reading one is a signed GET URL, for members of the
// post's space.

// AttachmentInfo is an attachment as a post shows it.
type AttachmentInfo struct {
	ID          string `json:"id" format:"uuid"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	SizeBytes   int64  `json:"size_bytes"`
}

// NewAttachment asks for an upload.
type NewAttachment struct {
	Filename    string `json:"filename" minLength:"1" maxLength:"200" doc:"The file's name, shown with the post."`
	ContentType string `json:"content_type" minLength:"3" maxLength:"100" pattern:"^[a-zA-Z0-9!#$&^_.+-]+/[a-zA-Z0-9!#$&^_.+-]+$" doc:"Its media type: the upload is stored with it."`
}

// AttachmentUpload is where to upload.
type AttachmentUpload struct {
	ID        string    `json:"id" format:"uuid" doc:"Name it in a post's attachments once uploaded."`
	UploadURL string    `json:"upload_url" doc:"PUT the file's bytes here (no other credentials); a relative URL is under the API's base URL."`
	ExpiresAt time.Time `json:"expires_at"`
}

// AttachmentDownload is where to read an attachment.
type AttachmentDownload struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

const uploadExpiry = 15 * time.Minute

// attachmentKey is an upload's object key.
func attachmentKey(uploader, id string) string { return "attachments/" + uploader + "/" + id }

func (p *Plugin) attachmentRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/spaces/{space_id}/attachments", Permission: PermPost,
			Summary: "Ask for a signed upload URL for a file to attach to a post in the space",
			Request: NewAttachment{}, Response: AttachmentUpload{}, Status: http.StatusCreated, Handler: p.newAttachment},
		{Method: "GET", Path: "/api/v1/attachments/{attachment_id}/download", Permission: PermSpaceRead,
			Summary:  "A signed URL to read an attachment (members of its post's space)",
			Response: AttachmentDownload{}, Handler: p.downloadAttachment},
	}
}

func (p *Plugin) newAttachment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	spaceID, err := req.UUIDParam("space_id")
	if err != nil {
		return nil, err
	}
	if !req.Principal.IsUser() {
		return nil, sdk.Errorf(sdk.ErrForbidden, "attachments are uploaded by a person").WithCode("not_a_person")
	}
	var in NewAttachment
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.Filename) == "" {
		return nil, blank("filename")
	}
	id := newID()
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		sp, err := loadSpace(ctx, tx, req, spaceID)
		if err != nil {
			return err
		}
		if !sp.member {
			return sdk.Errorf(sdk.ErrForbidden, "only members of the space post in it").WithCode("not_a_member")
		}
		_, err = tx.Exec(ctx, `INSERT INTO attachments (tenant_id, id, space_id, uploader_id, object_key, filename, content_type, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, req.Tenant(), id, spaceID, req.Principal.UserID,
			attachmentKey(req.Principal.UserID, id), strings.TrimSpace(in.Filename), in.ContentType, p.now())
		return err
	})
	if err != nil {
		return nil, err
	}
	url, err := sdk.Storage(req).SignedURL(ctx, attachmentKey(req.Principal.UserID, id), http.MethodPut, uploadExpiry,
		sdk.SignedURLOptions{ContentType: in.ContentType, IfNotExists: true})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, AttachmentUpload{ID: id, UploadURL: url, ExpiresAt: p.now().Add(uploadExpiry)})
}

func (p *Plugin) downloadAttachment(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("attachment_id")
	if err != nil {
		return nil, err
	}
	var key string
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var postID *string
		if err := tx.QueryRow(ctx, `SELECT object_key, post_id::text FROM attachments WHERE id = $1`, id).Scan(&key, &postID); err != nil {
			if err == pgx.ErrNoRows {
				return sdk.Errorf(sdk.ErrNotFound, "no attachment %s", id)
			}
			return err
		}
		if postID == nil {
			return sdk.Errorf(sdk.ErrNotFound, "no attachment %s", id)
		}
		_, err := loadPost(ctx, tx, req, *postID, false)
		if err != nil {
			return sdk.Errorf(sdk.ErrNotFound, "no attachment %s", id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	url, err := sdk.Storage(req).SignedURL(ctx, key, http.MethodGet, uploadExpiry)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, AttachmentDownload{URL: url, ExpiresAt: p.now().Add(uploadExpiry)})
}
