package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Row is one figure of bench/results.json.
type Row struct {
	Name          string   `json:"name"`
	Value         float64  `json:"value"`
	Unit          string   `json:"unit"`
	Baseline      *string  `json:"baseline"`       // what the value is compared with, measured in the same run
	BaselineValue *float64 `json:"baseline_value"` // in Unit
	Ratio         *float64 `json:"ratio"`          // Value / BaselineValue
	Target        *string  `json:"target"`         // e.g. "ratio >= 0.7", "value <= 5"
	Meets         *bool    `json:"meets"`          // null without a target
	Note          string   `json:"-"`              // printed under the table
}

// goal is a row's target: a bound on its value or on its ratio.
type goal struct {
	onRatio bool
	atLeast bool
	bound   float64
}

func (g goal) String() string {
	what, op := "value", "<="
	if g.onRatio {
		what = "ratio"
	}
	if g.atLeast {
		op = ">="
	}
	return fmt.Sprintf("%s %s %s", what, op, trim(g.bound))
}

func (g goal) holds(value float64, ratio *float64) bool {
	x := value
	if g.onRatio {
		if ratio == nil {
			return false
		}
		x = *ratio
	}
	if g.atLeast {
		return x >= g.bound
	}
	return x <= g.bound
}

func atMost(v float64) *goal       { return &goal{bound: v} }
func atLeast(v float64) *goal      { return &goal{atLeast: true, bound: v} }
func ratioAtLeast(v float64) *goal { return &goal{onRatio: true, atLeast: true, bound: v} }
func ratioAtMost(v float64) *goal  { return &goal{onRatio: true, bound: v} }

// row makes a row; baseline "" means none. Several goals must all hold.
func row(name string, value float64, unit, baseline string, baseValue float64, goals ...*goal) Row {
	r := Row{Name: name, Value: round(value), Unit: unit}
	if baseline != "" {
		b, bv := baseline, round(baseValue)
		r.Baseline, r.BaselineValue = &b, &bv
		if baseValue != 0 {
			ratio := round(value / baseValue)
			r.Ratio = &ratio
		}
	}
	var texts []string
	meets := true
	for _, g := range goals {
		if g == nil {
			continue
		}
		texts = append(texts, g.String())
		if !g.holds(value, r.Ratio) {
			meets = false
		}
	}
	if len(texts) > 0 {
		t := strings.Join(texts, " and ")
		r.Target, r.Meets = &t, &meets
	}
	return r
}

// round keeps three significant decimals for small values and whole
// numbers for large ones: figures from a shared machine are not more
// precise than that.
func round(v float64) float64 {
	switch a := math.Abs(v); {
	case a >= 1000:
		return math.Round(v)
	case a >= 10:
		return math.Round(v*10) / 10
	default:
		return math.Round(v*1000) / 1000
	}
}

func trim(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// writeTable prints rows as a Markdown table.
func writeTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| name | value | unit | baseline | baseline value | ratio | target | meets |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		base, bv, ratio, target, meets := "—", "—", "—", "—", "—"
		if r.Baseline != nil {
			base = *r.Baseline
			bv = trim(*r.BaselineValue)
		}
		if r.Ratio != nil {
			ratio = trim(*r.Ratio)
		}
		if r.Target != nil {
			target = *r.Target
		}
		if r.Meets != nil {
			meets = map[bool]string{true: "yes", false: "**no**"}[*r.Meets]
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s | %s | %s | %s |\n", r.Name, trim(r.Value), r.Unit, base, bv, ratio, target, meets)
	}
	for _, r := range rows {
		if r.Note != "" {
			fmt.Fprintf(w, "\n`%s`: %s\n", r.Name, r.Note)
		}
	}
}

func writeJSON(path string, rows []Row) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // ">=" as itself
	enc.SetIndent("", "  ")
	if err := enc.Encode(rows); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
