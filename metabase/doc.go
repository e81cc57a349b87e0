// Package metabase is a client for the parts of the Metabase HTTP API that
// manage users: look them up, disable, reactivate and update them.
//
// Create a client with an API key from the Administrators group (or with a
// username and password) and a timeout:
//
//	c, err := metabase.New("https://metabase.example.com",
//		metabase.WithAPIKey(os.Getenv("METABASE_API_KEY")),
//		metabase.WithTimeout(5*time.Second),
//	)
//	if err != nil {
//		return err
//	}
//	u, err := c.UserByEmail(ctx, "ada@example.com")
//	if errors.Is(err, metabase.ErrNotFound) {
//		// no such user
//	}
//	if err := c.DisableUser(ctx, u.ID); err != nil {
//		var apiErr *metabase.APIError
//		if errors.As(err, &apiErr) {
//			fmt.Println(apiErr.Message) // Metabase's own words
//		}
//	}
//
// Every non-2xx reply is an *APIError carrying Metabase's message
// verbatim, for people to read; match outcomes with errors.Is and
// ErrNotFound, ErrUnauthorized, ErrForbidden, ErrNotSupported,
// ErrAlreadyActive, ErrFormerAdminNotReactivated or ErrLastAdmin. Metabase
// translates its messages, so these are decided by status, route and a
// re-read of the user, never by the words (docs/metabase.md#languages).
// Errors never contain credentials.
//
// Notifications, Orphaned and PersonalCollectionItemCount show what a user
// leaves running (dashboard subscriptions, alerts, personal collection
// items); ChangeAlertCreator, ArchiveAlerts and ArchiveSubscription hand it
// over. Capabilities says which of these the connected Metabase supports;
// an endpoint a version lacks gives ErrNotSupported. The Metabase facts
// behind them are in docs/metabase-notifications.md.
//
// Idempotent calls (GET, DELETE, reactivate) are retried on connection
// errors and 502/503/504 replies within a RetryPolicy; updates and logins
// are never retried.
package metabase
