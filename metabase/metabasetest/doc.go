// Package metabasetest provides an in-process fake Metabase for tests: the
// user, session and health endpoints, as strict as the real service, so
// that what passes here does not fail in production. It records every
// request and can inject failures, held requests and latency.
//
// The fake models the newest Metabase (src/metabase/users_rest/api.clj)
// unless SetLegacyDelete selects the toucan2-era src/metabase/api/user.clj.
// docs/metabase.md in this repository explains each rule; paths below are
// in github.com/metabase/metabase.
//
// Authentication (api_keys/auth_provider.clj, api_keys/schema.clj,
// server/middleware/session.clj, api/response.clj):
//   - X-API-Key counts only if it is 12–254 characters starting "mb_";
//     otherwise it is ignored. A valid session wins over a key.
//   - Sessions and keys work only while their user is active.
//   - Without a valid credential every /api/user route answers 401
//     text/plain "Unauthenticated", before the route is matched.
//
// Errors (server/middleware/exceptions.clj, api/common.clj):
//   - Simple refusals are text/plain ("Not found.", "You don't have
//     permissions to do that."); checkp and malli failures are JSON
//     {"errors": …}; others JSON with "message".
//   - An unmatched route or an id that is not a positive integer is 404
//     "API endpoint does not exist." (api_routes/routes.clj).
//
// GET /api/user (users_rest/api.clj, users/models/user.clj):
//   - Superusers only. status active (default), deactivated or all;
//     include_deactivated=true overrides status.
//   - query is a case-insensitive substring match on first name, last
//     name and email; only personal users are listed (never API keys or
//     the internal user); order lower(first), lower(last), id.
//   - Unpaged unless limit or offset is given; total ignores paging.
//   - Only users without a tenant unless tenancy (all, internal,
//     external) or tenant_id asks for others; both at once is a 400.
//
// GET /api/user/:id returns any user, inactive and API-key users included;
// under SetLegacyDelete an inactive user or an API key's user is 404. The user object has no
// "type"; tenant_id is null or the tenant.
//
// PUT /api/user/:id (users_rest/api.clj, users/models/user.clj,
// permissions/models/permissions_group_membership.clj):
//   - Active users only (else 404); is_active is not accepted and is
//     dropped; the internal user is a 400; a taken email is a 400.
//   - is_superuser adds or removes the Admin membership; removing the
//     last active member of the Admin group (API keys count) is a 400.
//   - user_group_memberships, when given, must agree with is_superuser
//     (else 400 errors.is_superuser), and replaces the memberships only if
//     the set of ids differs. Removing or adding All Users (or All tenant
//     users) is a 400; a group that does not exist is a 400 "Cannot add
//     non-tenant user to tenant-group or vice versa", or a 500 under
//     SetLegacyDelete (the foreign key of older versions).
//   - With WithAdvancedPermissions (enterprise
//     advanced_permissions/models/permissions/group_manager.clj) the
//     memberships are compared with their is_group_manager flags: an entry
//     without the flag is a changed membership, so a list naming All Users
//     without it is the All Users 400. GET then returns the flags.
//   - Tenant users cannot become admins or join non-tenant groups.
//   - Nothing changes unless the whole request succeeds. POST /api/user
//     applies the same membership rules.
//
// PUT /api/user/:id/reactivate: personal users only (else 404); an active
// user is a 400 JSON "Not able to reactivate an active user"; a user of a
// deactivated tenant a 400 JSON too. It clears is_superuser and the Admin
// membership and keeps every other group; for a former admin that runs the
// last-admin check, which WithLastAdminBefore68198 makes the older, stricter
// one (metabase/metabase#59776).
//
// PUT /api/notification/:id (notification_put.go) archives an alert from
// v0.54 on and records the "you were removed" emails (RemovalEmails).
//
// What outlives a disable (access.go, docs/metabase.md#api-key-listing,
// #public-links, #sign-in-settings): AddAPIKey makes a key with its own
// user and an api_key row; GET /api/api-key (admins, else 403) lists the
// default-scope keys as present-api-key does, never a SCIM key, and
// DELETE /api/api-key/:id is 204, or 404 when gone, and deactivates the
// key's user. AddPublicItem adds a dashboard or card; GET
// /api/{dashboard,card}/public and DELETE /api/{dashboard,card}/:id/public_link
// need an admin and public sharing on (else a text 400 "Public sharing is
// not enabled."), the DELETE is 404 without a link and clears
// made_public_by_id; GET /api/{dashboard,card}/:id returns
// made_public_by_id. SetSetting sets the sign-in, provisioning, sharing and
// embedding switches that GET /api/session/properties shows by the
// caller's visibility; secrets are stored but never served.
//
// WithLocale("fr") answers every error in French, and WithVersionTag
// reports another version (e.g. vLOCAL_DEV): Metabase translates its
// messages, and a client must decide by status, structure and re-reads.
//
// DELETE /api/user/:id: 200 {"success":true}, also for an inactive user
// and for an API key's user, which it does not change (the update is
// filtered by type personal); 404 for a missing user; the last-admin 400.
// It ends the user's sessions and keeps their groups. Under
// SetLegacyDelete a missing, inactive or API-key user is a 500 JSON stack
// trace (metabase/metabase#66599).
//
// POST /api/session (session/api.clj, metabase/throttle): wrong
// credentials are 401 {"errors":{"password":"did not match stored
// password"}}; the 11th failure for a username within an hour is 401
// "Too many attempts!"; an inactive user is refused. DELETE /api/session
// is 204, or 404 for an unknown session. GET /api/health needs no
// credential.
//
// Latency is off by default so the suite stays fast. Tests that measure
// pass WithLatencyProfile(RealisticLatency()), which answers a user search
// with an API key in about 60 ms, mostly the bcrypt check Metabase does on
// every API-key request. The delay runs on a timer in the handler, after
// the request has taken effect, as a slow server's would.
package metabasetest
