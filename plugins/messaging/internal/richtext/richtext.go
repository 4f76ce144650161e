// Package richtext makes the rich text people post safe to show: HTML
// reduced to an allow-list of elements and attributes, re-serialised from
// the parse tree so that nothing a browser would read differently survives,
// and its plain-text form for email, push and search.
package richtext

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// allowed are the elements kept; every other element is dropped with its
// tags (its text stays), and the elements of dropped below with their
// content.
var allowed = map[atom.Atom]bool{
	atom.P: true, atom.Br: true, atom.Strong: true, atom.B: true, atom.Em: true, atom.I: true,
	atom.U: true, atom.S: true, atom.Blockquote: true, atom.Code: true, atom.Pre: true,
	atom.Ul: true, atom.Ol: true, atom.Li: true, atom.A: true, atom.H3: true, atom.H4: true,
}

// dropped are the elements removed with everything inside them: their
// content is not text a reader meant to show.
var dropped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Iframe: true, atom.Object: true, atom.Embed: true,
	atom.Template: true, atom.Noscript: true, atom.Svg: true, atom.Math: true, atom.Title: true,
	atom.Textarea: true, atom.Select: true, atom.Head: true, atom.Noembed: true, atom.Noframes: true,
	atom.Xmp: true, atom.Plaintext: true,
}

// void elements have no end tag.
var void = map[atom.Atom]bool{atom.Br: true}

// block elements end a line in the plain-text form.
var block = map[atom.Atom]bool{
	atom.P: true, atom.Br: true, atom.Blockquote: true, atom.Pre: true, atom.Ul: true, atom.Ol: true,
	atom.Li: true, atom.H3: true, atom.H4: true, atom.Div: true,
}

// MaxDepth bounds the nesting kept; deeper elements keep only their text.
const MaxDepth = 32

// Sanitize returns the safe form of an HTML fragment: only the allowed
// elements, only http, https and mailto links (with rel="nofollow noopener
// noreferrer"), no other attribute, text escaped. Invalid UTF-8 is
// replaced. Sanitize is idempotent: Sanitize(Sanitize(s)) == Sanitize(s).
func Sanitize(fragment string) string {
	fragment = strings.ReplaceAll(strings.ToValidUTF8(fragment, "\uFFFD"), "\x00", "")
	out := once(fragment)
	// Writing a tree the parser built from broken markup can give markup
	// the parser reads as another tree (a link inside a link that a table
	// cell allowed, once the table is gone): parse again until it settles,
	// so the result is a fixed point.
	for range 4 {
		again := once(out)
		if again == out {
			break
		}
		out = again
	}
	return out
}

func once(fragment string) string {
	ctx := &html.Node{Type: html.ElementNode, DataAtom: atom.Div, Data: "div"}
	nodes, err := html.ParseFragment(strings.NewReader(fragment), ctx)
	if err != nil { // the parser reads anything; keep the text escaped all the same
		return html.EscapeString(fragment)
	}
	var b strings.Builder
	for _, n := range nodes {
		write(&b, n, 0)
	}
	return b.String()
}

func write(b *strings.Builder, n *html.Node, depth int) {
	switch n.Type {
	case html.TextNode:
		b.WriteString(html.EscapeString(n.Data))
	case html.ElementNode:
		if dropped[n.DataAtom] {
			return
		}
		keep := allowed[n.DataAtom] && depth < MaxDepth
		if keep {
			b.WriteByte('<')
			b.WriteString(n.DataAtom.String())
			if n.DataAtom == atom.A {
				if href, ok := safeHref(attr(n, "href")); ok {
					b.WriteString(` href="`)
					b.WriteString(html.EscapeString(href))
					b.WriteString(`" rel="nofollow noopener noreferrer"`)
				}
			}
			b.WriteByte('>')
			if void[n.DataAtom] {
				return
			}
			// The parser drops a newline right after <pre>: write one
			// more, as html.Render does, so the text keeps its own.
			if c := n.FirstChild; n.DataAtom == atom.Pre && c != nil && c.Type == html.TextNode && strings.HasPrefix(c.Data, "\n") {
				b.WriteByte('\n')
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			write(b, c, depth+1)
		}
		if keep {
			b.WriteString("</")
			b.WriteString(n.DataAtom.String())
			b.WriteByte('>')
		}
	case html.DocumentNode:
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			write(b, c, depth)
		}
	}
	// Comments, doctypes and anything else: dropped.
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && strings.EqualFold(a.Key, name) {
			return a.Val
		}
	}
	return ""
}

// safeHref keeps absolute http, https and mailto URLs, without control
// characters or whitespace, at most 2,000 bytes.
func safeHref(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 2000 || !utf8.ValidString(raw) {
		return "", false
	}
	for _, r := range raw {
		if r < 0x21 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", false
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return "", false
		}
	case "mailto":
		if u.Opaque == "" {
			return "", false
		}
	default:
		return "", false
	}
	return u.String(), true
}

// Text is the plain text of sanitised HTML: the text of its elements, a
// line break after each block, entities decoded, runs of blank lines and
// spaces collapsed. Links keep their address in brackets after their text
// when it differs.
func Text(safeHTML string) string {
	ctx := &html.Node{Type: html.ElementNode, DataAtom: atom.Div, Data: "div"}
	nodes, err := html.ParseFragment(strings.NewReader(safeHTML), ctx)
	if err != nil {
		return safeHTML
	}
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			b.WriteString(n.Data)
			return
		case html.ElementNode:
			if dropped[n.DataAtom] {
				return
			}
			if n.DataAtom == atom.Li {
				b.WriteString("- ")
			}
		}
		start := b.Len()
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		if n.Type == html.ElementNode && n.DataAtom == atom.A {
			if href := attr(n, "href"); href != "" && strings.TrimSpace(b.String()[start:]) != href && !strings.HasPrefix(href, "mailto:") {
				b.WriteString(" (" + href + ")")
			}
		}
		if n.Type == html.ElementNode && block[n.DataAtom] {
			b.WriteString("\n")
		}
	}
	for _, n := range nodes {
		walk(n)
	}
	return collapse(b.String())
}

// collapse trims each line, collapses runs of spaces, and keeps at most
// one blank line in a row.
func collapse(s string) string {
	lines := strings.Split(s, "\n")
	out := make([]string, 0, len(lines))
	blank := false
	for _, l := range lines {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" {
			if blank || len(out) == 0 {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// FromText is the HTML of plain text: escaped, a paragraph per block of
// lines, a line break per line.
func FromText(text string) string {
	text = strings.ToValidUTF8(strings.ReplaceAll(text, "\r\n", "\n"), "\uFFFD")
	var b strings.Builder
	for _, para := range strings.Split(text, "\n\n") {
		para = strings.TrimSpace(para)
		if para == "" {
			continue
		}
		b.WriteString("<p>")
		for i, line := range strings.Split(para, "\n") {
			if i > 0 {
				b.WriteString("<br>")
			}
			b.WriteString(html.EscapeString(line))
		}
		b.WriteString("</p>")
	}
	return b.String()
}
