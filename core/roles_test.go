package core

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// roleProbe implements Middleware and Stopper.
type roleProbe struct{}

func (roleProbe) Wrap(next http.Handler) http.Handler { return next }
func (roleProbe) Stop(context.Context) error          { return nil }

// TestCheckRoles: an instance may play fewer roles than its module declares, never one more.
func TestCheckRoles(t *testing.T) {
	m := &Module{ID: "test.roles", GlobalRoles: RoleStarter}
	for _, tc := range []struct {
		name     string
		declared Role
		wantErr  string
	}{
		{"exact", RoleMiddleware | RoleStopper, ""},
		{"more declared than played", RoleMiddleware | RoleStopper | RoleRouter, ""},
		{"undeclared stopper", RoleMiddleware, "implements Stopper, which its registration does not declare in SiteRoles"},
		{"only the other kind declared", 0, "implements Middleware|Stopper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRoles(m, roleProbe{}, tc.declared, "site")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if err := CheckRoles(&Module{ID: "test.legacy", Package: "example.com/legacy"}, roleProbe{}, 0, "site"); err != nil {
		t.Fatalf("a third-party module that declares no roles is not checked: %v", err)
	}
	if err := CheckRoles(&Module{ID: "test.first", Package: repoPath + "/modules/x"}, roleProbe{}, 0, "site"); err == nil {
		t.Fatal("a module of this repository that declares no roles plays none")
	}
	if got := RolesOf(roleProbe{}); got != RoleMiddleware|RoleStopper {
		t.Fatalf("RolesOf = %s", got)
	}
	if n := len(roleIs); Role(1)<<n != roleEnd {
		t.Fatalf("%d role tests for %d roles", n, roleEnd)
	}
}
