package access

import (
	"context"

	"github.com/sirupsen/logrus"
)

type loggerKey struct{}

// WithLogger returns ctx carrying l, a logger with the fields of the operation under way (the
// request, the person, the channel), so every step of it logs them without being handed a
// logger.
func WithLogger(ctx context.Context, l logrus.FieldLogger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// Logger returns the logger ctx carries, or fallback (a component's own) when it carries none.
func Logger(ctx context.Context, fallback logrus.FieldLogger) logrus.FieldLogger {
	if l, ok := ctx.Value(loggerKey{}).(logrus.FieldLogger); ok {
		return l
	}
	return fallback
}
