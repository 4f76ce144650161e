package gamification

import "encoding/json"

// OpenAPI schemas of the routes' bodies, merged into the kernel's
// /api/openapi.json.
var (
	entrySchema = `{
		"type": "object",
		"required": ["user_id", "points", "rank"],
		"properties": {
			"user_id": {"type": "string", "format": "uuid"},
			"points": {"type": "integer"},
			"rank": {"type": "integer", "minimum": 1}
		}
	}`
	leaderboardSchema = json.RawMessage(`{
		"type": "object",
		"required": ["items", "label"],
		"properties": {
			"items": {"type": "array", "items": ` + entrySchema + `},
			"label": {"type": "string"}
		}
	}`)
	standingSchema = json.RawMessage(`{
		"type": "object",
		"required": ["user_id", "points", "rank", "label"],
		"properties": {
			"user_id": {"type": "string", "format": "uuid"},
			"points": {"type": "integer"},
			"rank": {"type": "integer", "minimum": 1},
			"label": {"type": "string"}
		}
	}`)
	snapshotSchema = json.RawMessage(`{
		"type": "object",
		"required": ["taken_at", "size", "items", "label"],
		"properties": {
			"taken_at": {"type": "string", "format": "date-time"},
			"size": {"type": "integer", "minimum": 1},
			"items": {"type": "array", "items": ` + entrySchema + `},
			"label": {"type": "string"}
		}
	}`)
	awardRequestSchema = json.RawMessage(`{
		"type": "object",
		"required": ["user_id", "points"],
		"additionalProperties": false,
		"properties": {
			"user_id": {"type": "string", "format": "uuid"},
			"points": {"type": "integer", "minimum": 1, "maximum": 1000},
			"reason": {"type": "string", "maxLength": 200}
		}
	}`)
	awardSchema = json.RawMessage(`{
		"type": "object",
		"required": ["id", "user_id", "points", "reason", "awarded_by", "total", "created_at"],
		"properties": {
			"id": {"type": "string", "format": "uuid"},
			"user_id": {"type": "string", "format": "uuid"},
			"points": {"type": "integer"},
			"reason": {"type": "string"},
			"awarded_by": {"type": "string"},
			"total": {"type": "integer"},
			"created_at": {"type": "string", "format": "date-time"}
		}
	}`)
)
