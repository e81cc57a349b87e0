//go:build tools

// Package tools pins dependencies that packages are about to use, so helpers working in parallel share one go.mod.
package tools

import (
	_ "github.com/caarlos0/env/v11"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/gorilla/websocket"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/sirupsen/logrus"
	_ "github.com/slack-go/slack/socketmode"
	_ "golang.org/x/sync/errgroup"
	_ "modernc.org/sqlite"
)
