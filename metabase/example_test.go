package metabase_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/metabase-bot/metabase-bot/metabase"
)

func Example() {
	ctx := context.Background()
	c, err := metabase.New("https://metabase.example.com/",
		metabase.WithAPIKey("mb_..."),
		metabase.WithTimeout(5*time.Second),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	u, err := c.UserByEmail(ctx, "ada@example.com")
	if errors.Is(err, metabase.ErrNotFound) {
		fmt.Println("no such user")
		return
	} else if err != nil {
		fmt.Println(err)
		return
	}
	wasAdmin := u.IsSuperuser
	if err := c.DisableUser(ctx, u.ID); err != nil {
		fmt.Println(err)
		return
	}
	// Later: reactivation clears is_superuser, so restore it.
	if _, err := c.ReactivateUser(ctx, u.ID); err != nil && !errors.Is(err, metabase.ErrAlreadyActive) {
		fmt.Println(err)
		return
	}
	if wasAdmin {
		_, err = c.UpdateUser(ctx, u.ID, metabase.UserUpdate{IsSuperuser: &wasAdmin})
	}
	fmt.Println(err)
}
