package courses

import (
	"html"
	"regexp"
	"strings"
)

// Lesson bodies are stored for clients to render. An html body could run
// script in a reader's browser, so the plugin refuses the obvious vectors
// rather than keep them; markdown and plain bodies are not HTML and may
// show anything (a lesson about <script> tags).

var (
	scriptTag   = regexp.MustCompile(`(?i)<\s*/?\s*script`)
	eventAttr   = regexp.MustCompile(`(?i)<[a-z][^>]*[\s/"']on[a-z]+\s*=`)
	urlControls = regexp.MustCompile(`[\x00-\x20]+`)
)

// unsafeSchemes are the URL schemes that run code when followed.
var unsafeSchemes = []string{"javascript:", "vbscript:", "data:text/html"}

// unsafeHTML says what in an html body could run script in a reader's
// browser, or "": script elements, on* event attributes, and javascript:,
// vbscript: and data:text/html URLs (also when written with character
// references or split by whitespace, which browsers ignore in a URL's
// scheme).
func unsafeHTML(body string) string {
	if scriptTag.MatchString(body) {
		return "must not contain <script> elements"
	}
	if eventAttr.MatchString(body) {
		return "must not contain on* event handler attributes"
	}
	flat := strings.ToLower(urlControls.ReplaceAllString(html.UnescapeString(body), ""))
	for _, scheme := range unsafeSchemes {
		if strings.Contains(flat, scheme) {
			return "must not contain javascript:, vbscript: or data:text/html URLs"
		}
	}
	return ""
}
