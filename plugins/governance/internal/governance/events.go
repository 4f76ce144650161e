package governance

import "github.com/edulure/edulure/sdk"

var publishedEvents = []sdk.EventType{
	{Type: EventRetentionExecuted, Description: "A retention execution (or recorded dry run) ended; its signed record is GET /api/v1/governance/retention/executions/{id}.", Schema: ExecutionEvent{}},
	{Type: EventRetentionFailed, Description: "A retention execution ended with failures: a class's retention call failed after its retries, or the record could not be signed.", Schema: ExecutionEvent{}},
}
