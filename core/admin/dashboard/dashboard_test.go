package dashboard_test

import (
	_ "github.com/conduitproxy/conduit/modules/proxy"
	_ "github.com/conduitproxy/conduit/modules/tap"
)

// token is the Admin API token of every test config.
const token = "dashboard-test-admin-token-0123456789"
