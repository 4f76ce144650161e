package richtext_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/edulure/edulure/plugins/messaging/internal/richtext"
)

func TestSanitize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"plain text is escaped", `1 < 2 & "x"`, `1 &lt; 2 &amp; &#34;x&#34;`},
		{"allowed elements stay", `<p>Hi <strong>all</strong>, <em>see</em></p>`, `<p>Hi <strong>all</strong>, <em>see</em></p>`},
		{"script goes with its content", `a<script>alert(1)</script>b`, `ab`},
		{"style goes with its content", `<style>p{}</style><p>x</p>`, `<p>x</p>`},
		{"event handlers go", `<p onclick="x()">hi</p>`, `<p>hi</p>`},
		{"unknown elements keep their text", `<div><span>hi</span></div>`, `hi`},
		{"javascript links lose the href", `<a href="javascript:alert(1)">x</a>`, `<a>x</a>`},
		{"entity-encoded javascript too", `<a href="jav&#x09;ascript:alert(1)">x</a>`, `<a>x</a>`},
		{"relative links go", `<a href="/admin">x</a>`, `<a>x</a>`},
		{"https links stay, with rel", `<a href="https://example.test/a?b=1&c=2" target="_blank">x</a>`,
			`<a href="https://example.test/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">x</a>`},
		{"mailto stays", `<a href="mailto:a@b.test">mail</a>`, `<a href="mailto:a@b.test" rel="nofollow noopener noreferrer">mail</a>`},
		{"images go", `<img src=x onerror=alert(1)>after`, `after`},
		{"svg goes whole", `<svg><script>alert(1)</script><text>t</text></svg>ok`, `ok`},
		{"comments go", `a<!-- secret -->b`, `ab`},
		{"unclosed tags are closed", `<p><b>bold`, `<p><b>bold</b></p>`},
		{"iframe goes", `<iframe src="https://evil.test"></iframe>x`, `x`},
		{"NUL is removed", "a\x00b", "ab"},
		{"invalid UTF-8 is replaced", "a\xffb", "a\uFFFDb"},
		{"pre keeps its leading newline", "<pre>\n\ncode</pre>", "<pre>\n\ncode</pre>"},
		{"lists", `<ul><li>one</li><li>two</li></ul>`, `<ul><li>one</li><li>two</li></ul>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := richtext.Sanitize(tc.in)
			require.Equal(t, tc.want, got)
			require.Equal(t, got, richtext.Sanitize(got), "idempotent")
		})
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	in := richtext.Sanitize(`<p>Hello <strong>world</strong> &amp; friends</p><ul><li>one</li><li>two</li></ul><p>See <a href="https://example.test/x">the notes</a>.</p>`)
	require.Equal(t, "Hello world & friends\n- one\n- two\n\nSee the notes (https://example.test/x).", richtext.Text(in))
	require.Equal(t, "<p>a &lt;b&gt;<br>c</p><p>d</p>", richtext.FromText("a <b>\nc\n\nd"))
}

// FuzzSanitize: whatever comes in, what comes out is a fixed point, holds
// only allowed elements with only safe attributes, and no text that a
// browser would run.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		`<p>hi</p>`, `<a href="javascript:x">y</a>`, `<script>x</script>`, `<table><td><a href=https://a.test><a href=https://b.test>x`,
		`<pre>` + "\n\n" + `x</pre>`, `<svg><a xlink:href="javascript:x">y</a></svg>`, `<math><mi><style><img src=x onerror=1>`,
		`<noscript><p title="</noscript><img src=x onerror=alert(1)>">`, `<a href=" https://x.test ">`, "<p>\x00<b>",
		`<form><button formaction=javascript:x>`, `<<p>>`, `<!--><a href=javascript:1>`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := richtext.Sanitize(in)
		if again := richtext.Sanitize(out); again != out {
			t.Fatalf("not idempotent:\n in: %q\nout: %q\nagain: %q", in, out, again)
		}
		ctx := &html.Node{Type: html.ElementNode, DataAtom: atom.Div, Data: "div"}
		nodes, err := html.ParseFragment(strings.NewReader(out), ctx)
		if err != nil {
			t.Fatal(err)
		}
		ok := map[string]bool{"p": true, "br": true, "strong": true, "b": true, "em": true, "i": true, "u": true, "s": true,
			"blockquote": true, "code": true, "pre": true, "ul": true, "ol": true, "li": true, "a": true, "h3": true, "h4": true}
		var walk func(n *html.Node)
		walk = func(n *html.Node) {
			switch n.Type {
			case html.ElementNode:
				if !ok[n.Data] || n.Namespace != "" {
					t.Fatalf("element %q in %q (from %q)", n.Data, out, in)
				}
				for _, a := range n.Attr {
					switch {
					case n.Data == "a" && a.Key == "rel":
					case n.Data == "a" && a.Key == "href":
						l := strings.ToLower(a.Val)
						if !strings.HasPrefix(l, "https://") && !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "mailto:") {
							t.Fatalf("href %q in %q (from %q)", a.Val, out, in)
						}
					default:
						t.Fatalf("attribute %s on %s in %q (from %q)", a.Key, n.Data, out, in)
					}
				}
			case html.CommentNode, html.DoctypeNode:
				t.Fatalf("%v node in %q", n.Type, out)
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		for _, n := range nodes {
			walk(n)
		}
		_ = richtext.Text(out)
	})
}
