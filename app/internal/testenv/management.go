package testenv

import "testing"

// ManagementURL returns the URL of the shared RabbitMQ server's management API, with the
// administrator's credentials, so it can read the vhosts that RabbitMQ(t) creates.
func ManagementURL(t testing.TB) string {
	t.Helper()
	requireShared(t)
	return shared.management
}
