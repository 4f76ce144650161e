package commerce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Product is a product of the catalogue with what it grants and its
// prices.
type Product struct {
	ID           string        `json:"id" format:"uuid"`
	Name         string        `json:"name"`
	Description  string        `json:"description"`
	Kind         string        `json:"kind" enum:"course,bundle,membership"`
	Status       string        `json:"status" enum:"active,archived"`
	Entitlements []Entitlement `json:"entitlements" doc:"What a paid order of it grants: enrolment in these courses."`
	Prices       []Price       `json:"prices" doc:"Its prices: active ones only, unless the caller manages the catalogue."`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

// Entitlement is a course a paid product grants, optionally in a cohort.
// The courses plugin enrols the buyer (and skips, with a warning, a course
// the institution does not have or has not published).
type Entitlement struct {
	CourseID string `json:"course_id" format:"uuid"`
	CohortID string `json:"cohort_id,omitempty" format:"uuid" doc:"Absent: the soonest cohort with a free seat, if the course runs in cohorts."`
}

// CreateProduct is the body of POST /api/v1/products.
type CreateProduct struct {
	Name         string        `json:"name" minLength:"1" maxLength:"200"`
	Description  string        `json:"description,omitempty" maxLength:"2000"`
	Kind         string        `json:"kind" enum:"course,bundle,membership" doc:"course: grants one course; bundle: several; membership: a plan sold with recurring prices."`
	Entitlements []Entitlement `json:"entitlements,omitempty" maxItems:"50"`
}

// PatchProduct is the body of PATCH /api/v1/products/{product_id}.
type PatchProduct struct {
	Name         sdk.Optional[string]        `json:"name" minLength:"1" maxLength:"200"`
	Description  sdk.Optional[string]        `json:"description" maxLength:"2000"`
	Status       sdk.Optional[string]        `json:"status" enum:"active,archived" doc:"archived: off sale; orders keep it."`
	Entitlements sdk.Optional[[]Entitlement] `json:"entitlements" maxItems:"50" doc:"Replaces what it grants, for orders from now on."`
}

// ListProductsQuery filters GET /api/v1/products.
type ListProductsQuery struct {
	Status string `query:"status" enum:"active,archived" doc:"Archived products only with commerce.catalogue.manage."`
	Kind   string `query:"kind" enum:"course,bundle,membership"`
}

func (p *Plugin) productRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/products", Permission: PermCatalogueManage,
			Summary: "Create a product: a course, a bundle of courses or a membership plan, with the courses it grants.",
			Request: CreateProduct{}, Response: Product{}, Status: http.StatusCreated, Handler: p.createProduct,
		},
		{
			Method: "GET", Path: "/api/v1/products", Permission: PermCatalogueRead,
			Summary:  "The catalogue, newest first: active products with their active prices (all, for those who manage it).",
			Response: sdk.Page[Product]{}, Query: ListProductsQuery{}, Paginated: true, Handler: p.listProducts,
		},
		{
			Method: "GET", Path: "/api/v1/products/{product_id}", Permission: PermCatalogueRead,
			Summary: "A product with its prices.", Response: Product{}, Handler: p.getProduct,
		},
		{
			Method: "PATCH", Path: "/api/v1/products/{product_id}", Permission: PermCatalogueManage,
			Summary: "Change a product's name, description, status or what it grants.",
			Request: PatchProduct{}, Response: Product{}, Handler: p.patchProduct,
		},
	}
}

// checkEntitlements checks what a schema cannot: a course named twice, and
// the number of courses a kind takes.
func checkEntitlements(kind string, ents []Entitlement, field string) ([]Entitlement, error) {
	out := make([]Entitlement, 0, len(ents))
	seen := map[string]bool{}
	for i, e := range ents {
		e.CourseID, e.CohortID = strings.ToLower(e.CourseID), strings.ToLower(e.CohortID)
		if seen[e.CourseID] {
			return nil, sdk.Invalid(sdk.FieldError{Field: fmt.Sprintf("%s.%d.course_id", field, i), Message: "is given twice"})
		}
		seen[e.CourseID] = true
		out = append(out, e)
	}
	switch {
	case kind == "course" && len(out) != 1:
		return nil, sdk.Invalid(sdk.FieldError{Field: field, Message: "a course product grants exactly one course"})
	case kind == "bundle" && len(out) < 2:
		return nil, sdk.Invalid(sdk.FieldError{Field: field, Message: "a bundle grants two courses or more"})
	}
	return out, nil
}

func (p *Plugin) createProduct(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in CreateProduct
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	name, err := notBlank("name", in.Name)
	if err != nil {
		return nil, err
	}
	ents, err := checkEntitlements(in.Kind, in.Entitlements, "entitlements")
	if err != nil {
		return nil, err
	}
	var out *Product
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `INSERT INTO products (name, description, kind, created_by) VALUES ($1, $2, $3, $4) RETURNING id`,
			name, strings.TrimSpace(in.Description), in.Kind, req.Principal.ID()).Scan(&id)
		if err != nil {
			return err
		}
		if err := writeEntitlements(ctx, tx, id, ents); err != nil {
			return err
		}
		out, err = loadProduct(ctx, tx, id, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out)
}

func writeEntitlements(ctx context.Context, tx pgx.Tx, productID string, ents []Entitlement) error {
	if _, err := tx.Exec(ctx, `DELETE FROM product_entitlements WHERE product_id = $1`, productID); err != nil {
		return err
	}
	for i, e := range ents {
		if _, err := tx.Exec(ctx, `INSERT INTO product_entitlements (product_id, course_id, cohort_id, position) VALUES ($1, $2, $3, $4)`,
			productID, e.CourseID, nullIfEmpty(e.CohortID), i); err != nil {
			return err
		}
	}
	return nil
}

const productColumns = `p.id, p.name, p.description, p.kind, p.status, p.created_at, p.updated_at,
	coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('course_id', e.course_id, 'cohort_id', e.cohort_id)) ORDER BY e.position)
	          FROM product_entitlements e WHERE e.product_id = p.id), '[]')`

func scanProduct(row pgx.Row) (*Product, error) {
	var pr Product
	var ents []byte
	if err := row.Scan(&pr.ID, &pr.Name, &pr.Description, &pr.Kind, &pr.Status, &pr.CreatedAt, &pr.UpdatedAt, &ents); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(ents, &pr.Entitlements); err != nil {
		return nil, err
	}
	pr.CreatedAt, pr.UpdatedAt = pr.CreatedAt.UTC(), pr.UpdatedAt.UTC()
	pr.Prices = []Price{}
	return &pr, nil
}

// loadProduct reads a product with its prices (all, or the active ones).
func loadProduct(ctx context.Context, tx pgx.Tx, id string, allPrices bool) (*Product, error) {
	pr, err := scanProduct(tx.QueryRow(ctx, `SELECT `+productColumns+` FROM products p WHERE p.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no product %s", id)
	}
	if err != nil {
		return nil, err
	}
	return pr, loadPrices(ctx, tx, []*Product{pr}, allPrices)
}

func (p *Plugin) getProduct(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("product_id")
	if err != nil {
		return nil, err
	}
	manage := req.Principal.Can(PermCatalogueManage)
	var out *Product
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		out, err = loadProduct(ctx, tx, id, manage)
		if err == nil && out.Status != "active" && !manage {
			return sdk.Errorf(sdk.ErrNotFound, "no product %s", id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func (p *Plugin) listProducts(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ListProductsQuery](req)
	if err != nil {
		return nil, err
	}
	manage := req.Principal.Can(PermCatalogueManage)
	if q.Status == "archived" && !manage {
		return nil, sdk.Errorf(sdk.ErrForbidden, "archived products need the permission %s", PermCatalogueManage)
	}
	where, args := []string{"true"}, []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if q.Status != "" {
		where = append(where, "p.status = "+arg(q.Status))
	} else if !manage {
		where = append(where, "p.status = 'active'")
	}
	if q.Kind != "" {
		where = append(where, "p.kind = "+arg(q.Kind))
	}
	if at, id, ok, err := page.AfterTime(); err != nil {
		return nil, err
	} else if ok {
		where = append(where, fmt.Sprintf("(p.created_at, p.id) < (%s, %s::uuid)", arg(at), arg(id)))
	}
	var items []Product
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+productColumns+` FROM products p WHERE `+strings.Join(where, " AND ")+
			fmt.Sprintf(` ORDER BY p.created_at DESC, p.id DESC LIMIT %d`, page.Limit+1), args...)
		if err != nil {
			return err
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Product, error) { return scanProduct(r) })
		if err != nil {
			return err
		}
		if err := loadPrices(ctx, tx, list, manage); err != nil {
			return err
		}
		for _, pr := range list {
			items = append(items, *pr)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(pr Product) []string { return sdk.TimeKey(pr.CreatedAt, pr.ID) }))
}

func (p *Plugin) patchProduct(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("product_id")
	if err != nil {
		return nil, err
	}
	var in PatchProduct
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	name, nameSet, err := in.Name.NotNull("name")
	if err != nil {
		return nil, err
	}
	desc, descSet, err := in.Description.NotNull("description")
	if err != nil {
		return nil, err
	}
	status, statusSet, err := in.Status.NotNull("status")
	if err != nil {
		return nil, err
	}
	ents, entsSet, err := in.Entitlements.NotNull("entitlements")
	if err != nil {
		return nil, err
	}
	if !nameSet && !descSet && !statusSet && !entsSet {
		return nil, sdk.Invalid(sdk.FieldError{Field: "name", Message: "give name, description, status or entitlements: the request changes nothing"})
	}
	if nameSet {
		if name, err = notBlank("name", name); err != nil {
			return nil, err
		}
	}
	var out *Product
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		cur, err := loadProduct(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !nameSet {
			name = cur.Name
		}
		if !descSet {
			desc = cur.Description
		}
		if !statusSet {
			status = cur.Status
		}
		if entsSet {
			if ents, err = checkEntitlements(cur.Kind, ents, "entitlements"); err != nil {
				return err
			}
			if err := writeEntitlements(ctx, tx, id, ents); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE products SET name = $2, description = $3, status = $4, updated_at = now() WHERE id = $1`,
			id, name, strings.TrimSpace(desc), status); err != nil {
			return err
		}
		out, err = loadProduct(ctx, tx, id, true)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}
