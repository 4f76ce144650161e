package commerce

import (
	"context"
	"fmt"
)

// TaxCalculator is the tax hook: it computes the tax of a checkout's lines
// (their amounts after discounts) for the buyer's country. The result is
// snapshotted on the order and never recomputed, so a change of rates
// applies to new orders only.
//
// The default is RateTable, the institution's own table of rates by
// country (Config.TaxRates). To plug in another (Stripe Tax, a tax
// service, your rules), implement TaxCalculator and build the plugin with
// it (main.go):
//
//	func main() { sdk.Serve(func() *commerce.Plugin { return commerce.NewWith(commerce.WithTaxCalculator(myCalc{})) }) }
//
// A calculator is called inside no transaction, once per checkout; an error
// refuses the checkout (an *sdk.Error keeps its status, anything else is a
// 503 the buyer may retry).
type TaxCalculator interface {
	Calculate(ctx context.Context, in TaxInput) (TaxResult, error)
}

// TaxInput is what a calculator gets.
type TaxInput struct {
	TenantID string
	Country  string // ISO 3166-1 alpha-2; "" when unknown
	Currency string
	Config   Config // the institution's settings in force
	Lines    []TaxLine
}

// TaxLine is one line to tax: its amount after discounts, in minor units,
// and whether that amount includes the tax.
type TaxLine struct {
	Amount    int64
	Inclusive bool
}

// TaxResult is a calculation, as the order keeps it.
type TaxResult struct {
	Calculator string `json:"calculator" doc:"Which calculator computed it (rate_table by default)."`
	Country    string `json:"country,omitempty"`
	RateBPS    int    `json:"rate_bps" doc:"The rate applied, in basis points."`
	// Lines are the tax of each line, in input order: added to an
	// exclusive line, included in an inclusive one.
	Lines []int64 `json:"lines"`
}

// RateTable is the default calculator: the rate the institution's table
// lists for the country (0 when it lists none), rounded half up per line.
// An exclusive line's tax is rate × amount; an inclusive line's is the part
// of its amount that is tax, amount − amount / (1 + rate).
type RateTable struct{}

var _ TaxCalculator = RateTable{}

// Calculate implements TaxCalculator.
func (RateTable) Calculate(_ context.Context, in TaxInput) (TaxResult, error) {
	rate, _ := in.Config.taxRate(in.Country)
	out := TaxResult{Calculator: "rate_table", Country: in.Country, RateBPS: rate, Lines: make([]int64, len(in.Lines))}
	for i, l := range in.Lines {
		if l.Amount < 0 {
			return TaxResult{}, fmt.Errorf("line %d: a negative amount", i)
		}
		if l.Inclusive {
			net := divRound(l.Amount*10000, int64(10000+rate))
			out.Lines[i] = l.Amount - net
		} else {
			out.Lines[i] = divRound(l.Amount*int64(rate), 10000)
		}
	}
	return out, nil
}

// divRound is a/b rounded half up, for a ≥ 0 and b > 0.
func divRound(a, b int64) int64 { return (2*a + b) / (2 * b) }
