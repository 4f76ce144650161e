package courses

import (
	"html"
	"strings"
	"testing"
)

func TestUnsafeHTML(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		safe bool
	}{
		{`<p>Speed is <b>distance</b> over time.</p><img src="a.png" alt="graph">`, true},
		{`<a href="https://example.test/javascript-basics">JavaScript basics</a>`, true},
		{`<p>Say "onward = forwards"</p>`, true},
		{"<p>hi</p><SCRIPT>alert(1)</script>", false},
		{"< script >", false},
		{`<img src="a.png" onerror="alert(1)">`, false},
		{`<svg/onload=alert(1)>`, false},
		{`<b onclick = 'x()'>b</b>`, false},
		{`<a href="JavaScript:alert(1)">x</a>`, false},
		{`<a href="java&#x09;script&#58;alert(1)">x</a>`, false},
		{"<a href=\"java\nscript:alert(1)\">x</a>", false},
		{`<a href="vbscript:msgbox(1)">x</a>`, false},
		{`<iframe src="data:text/html;base64,PHNjcmlwdD4="></iframe>`, false},
	} {
		msg := unsafeHTML(tc.body)
		if (msg == "") != tc.safe {
			t.Errorf("unsafeHTML(%q) = %q, want safe %v", tc.body, msg, tc.safe)
		}
	}
}

// FuzzUnsafeHTML checks the sanitizer against runsScript, a second,
// slower reading of what a browser could run: whatever the body, unsafeHTML
// never panics, and never accepts a body runsScript flags.
func FuzzUnsafeHTML(f *testing.F) {
	for _, s := range []string{
		"<p>hello</p>", "<script>x</script>", `<a href="javascript:x">`, `<img onerror=x>`, "java&#115;cript:",
		"<svg/onload=x>", "data:text/html,x", "<scr<script>ipt>", "< / SCRIPT", "<a\tonclick\n=x>", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if unsafeHTML(body) == "" && runsScript(body) {
			t.Fatalf("accepted a body that runs script: %q", body)
		}
	})
}

// runsScript scans body by hand for what unsafeHTML refuses: a script
// element, an on* attribute inside a tag, or, once character references
// are decoded and the control characters and spaces browsers ignore in a
// URL's scheme removed, a javascript:, vbscript: or data:text/html URL.
func runsScript(body string) bool {
	lower := strings.ToLower(body)
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
	for i := 0; i < len(lower); i++ {
		if lower[i] != '<' {
			continue
		}
		j := i + 1
		for j < len(lower) && space(lower[j]) {
			j++
		}
		if j < len(lower) && lower[j] == '/' {
			j++
		}
		for j < len(lower) && space(lower[j]) {
			j++
		}
		if strings.HasPrefix(lower[j:], "script") {
			return true
		}
		if i+1 >= len(lower) || lower[i+1] < 'a' || lower[i+1] > 'z' {
			continue // not a tag
		}
		tag := lower[i+1:]
		if end := strings.IndexByte(tag, '>'); end >= 0 {
			tag = tag[:end]
		}
		for k := 2; k+2 < len(tag); k++ {
			if b := tag[k-1]; !space(b) && b != '/' && b != '"' && b != '\'' || !strings.HasPrefix(tag[k:], "on") {
				continue
			}
			n := k + 2
			for n < len(tag) && tag[n] >= 'a' && tag[n] <= 'z' {
				n++
			}
			if n == k+2 {
				continue
			}
			for n < len(tag) && space(tag[n]) {
				n++
			}
			if n < len(tag) && tag[n] == '=' {
				return true
			}
		}
	}
	flat := strings.ToLower(strings.Map(func(r rune) rune {
		if r <= ' ' {
			return -1
		}
		return r
	}, html.UnescapeString(body)))
	return strings.Contains(flat, "javascript:") || strings.Contains(flat, "vbscript:") || strings.Contains(flat, "data:text/html")
}
