package metabasetest

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ----- /api/collection/:id/items (src/metabase/collections/api.clj, newer
// src/metabase/collections_rest/api.clj) -----

// collectionItems serves GET /api/collection/:id/items for personal
// collections: 404 "Not found." for an unknown collection, 403 unless the
// caller is an admin or the owner. archived (default false) chooses
// archived items instead of the others; models filters; limit and offset
// page (offset paging). The reply is {total, data, models, limit, offset},
// total counting every matching item whatever the page.
func (s *Server) collectionItems(w http.ResponseWriter, id int, q url.Values, caller *user) {
	archived, ok := queryBool(w, q, "archived", pFalse)
	if !ok {
		return
	}
	owner := s.personalCollectionOwnerLocked(id)
	if owner == nil {
		writeText(w, http.StatusNotFound, msgNotFound)
		return
	}
	if !caller.Superuser && caller.ID != owner.ID {
		writeText(w, http.StatusForbidden, msgForbidden)
		return
	}
	models := q["models"]
	var rows []CollectionItem
	for _, it := range s.notif.items[id] {
		if it.Archived == *archived && (len(models) == 0 || slices.Contains(models, it.Model)) {
			rows = append(rows, it)
		}
	}
	slices.SortFunc(rows, func(a, b CollectionItem) int {
		return cmp.Or(strings.Compare(lowerName(a.Name), lowerName(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	present := []string{}
	for _, it := range rows {
		if !slices.Contains(present, it.Model) {
			present = append(present, it.Model)
		}
	}
	slices.Sort(present)
	limit, offset, paged := paging(q)
	shown := rows
	if paged {
		shown = page(rows, limit, offset)
	}
	data := make([]any, len(shown))
	for i, it := range shown {
		data[i] = map[string]any{"id": it.ID, "name": it.Name, "model": it.Model, "archived": it.Archived,
			"collection_id": id, "description": nil}
	}
	resp := map[string]any{"total": len(rows), "data": data, "models": present, "limit": nil, "offset": nil}
	if paged {
		resp["limit"], resp["offset"] = limit, offset
	}
	writeJSON(w, http.StatusOK, resp)
}
