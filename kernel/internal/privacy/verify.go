package privacy

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Verification is what an export of an erased person held once every step
// of the erasure was done: the kernel's part and each plugin's, run as a
// person's export runs (the same calls and checks, each plugin's stream
// against its manifest), counted and not kept. It names no person: sources,
// data classes and tables, counts.
type Verification struct {
	// VerifiedEmpty: every source answered and none held a row or an
	// object of the person.
	VerifiedEmpty bool      `json:"verified_empty"`
	CheckedAt     time.Time `json:"checked_at"`
	// Sources: "kernel" first, then each plugin with data classes.
	Sources []VerifiedSource `json:"sources"`
}

// VerifiedSource is one source's share of the verification.
type VerifiedSource struct {
	Source  string `json:"source"`
	Rows    uint64 `json:"rows"`
	Objects uint64 `json:"objects"`
	// Classes: the classes still holding something (none when empty).
	Classes []VerifiedClass `json:"classes"`
	// Error: the source's export failed, so nothing is verified of it (the
	// person's ID is replaced by "<person>").
	Error string `json:"error,omitempty"`
}

// VerifiedClass is what one data class (or kernel file) still held.
type VerifiedClass struct {
	Class   string `json:"class,omitempty"`
	Table   string `json:"table,omitempty"`
	Rows    uint64 `json:"rows"`
	Objects uint64 `json:"objects"`
}

// verifyErased exports the erased person of r again and counts what each
// source still yields. A source whose export fails is reported with its
// error and makes the verification false: it never passes unchecked.
func (s *Service) verifyErased(ctx context.Context, r Request) Verification {
	v := Verification{CheckedAt: s.now().Truncate(time.Microsecond), Sources: []VerifiedSource{}}
	if r.UserID == nil {
		return v
	}
	user := *r.UserID
	scrub := func(err error) string {
		return strings.ReplaceAll(errorText(err), user.String(), "<person>")
	}
	b, err := newBundle()
	if err != nil {
		v.Sources = append(v.Sources, VerifiedSource{Source: KernelSource, Classes: []VerifiedClass{}, Error: scrub(err)})
		return v
	}
	defer b.close()
	failed := map[string]string{}
	order := []string{KernelSource}
	if err := s.exportPersonKernel(ctx, b, r.TenantID, user); err != nil {
		failed[KernelSource] = scrub(err)
	}
	e := Export{ID: r.ID, TenantID: r.TenantID, UserID: &user}
	for _, p := range s.plugins.PersonalDataPlugins() {
		if !p.Classes {
			continue
		}
		order = append(order, p.Name)
		if err := s.exportPersonPlugin(ctx, b, p.Name, p.Version, e); err != nil {
			failed[p.Name] = scrub(err)
		}
	}
	return tally(v, order, b.files, failed)
}

// tally counts the files each source exported, per class.
func tally(v Verification, order []string, files []BundleFile, failed map[string]string) Verification {
	v.VerifiedEmpty = true
	type key struct{ source, class, table string }
	per := map[key]*VerifiedClass{}
	var keys []key
	for _, f := range files {
		k := key{f.Source, f.Class, f.Table}
		c := per[k]
		if c == nil {
			c = &VerifiedClass{Class: f.Class, Table: f.Table}
			per[k] = c
			keys = append(keys, k)
		}
		if strings.Contains(f.Path, "/objects/") {
			c.Objects++
		} else {
			c.Rows += f.Rows
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].class < keys[j].class || keys[i].class == keys[j].class && keys[i].table < keys[j].table
	})
	for _, src := range order {
		vs := VerifiedSource{Source: src, Classes: []VerifiedClass{}, Error: failed[src]}
		for _, k := range keys {
			if k.source != src {
				continue
			}
			c := per[k]
			if c.Rows == 0 && c.Objects == 0 {
				continue
			}
			vs.Rows += c.Rows
			vs.Objects += c.Objects
			vs.Classes = append(vs.Classes, *c)
		}
		if vs.Rows > 0 || vs.Objects > 0 || vs.Error != "" {
			v.VerifiedEmpty = false
		}
		v.Sources = append(v.Sources, vs)
	}
	return v
}

// verificationDetail is the verification's line in the request's history.
func verificationDetail(v Verification) string {
	if v.VerifiedEmpty {
		return fmt.Sprintf("an export of the person is empty (%d sources checked)", len(v.Sources))
	}
	var left []string
	for _, s := range v.Sources {
		switch {
		case s.Error != "":
			left = append(left, s.Source+": not checked, "+s.Error)
		case s.Rows > 0 || s.Objects > 0:
			left = append(left, fmt.Sprintf("%s: %d rows, %d objects", s.Source, s.Rows, s.Objects))
		}
	}
	return "an export of the person is NOT empty: " + strings.Join(left, "; ")
}
