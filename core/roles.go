package core

import (
	"fmt"
	"reflect"
	"strings"
)

// Role is one part a module's instance plays for the core. A module declares the roles its
// instances may play (Module.SiteRoles, Module.GlobalRoles); the server checks every instance
// it provisions against that declaration, so a method added for another reason never
// silently makes an instance a Stopper or a Router (CheckRoles).
type Role uint32

// The roles, one per interface the core looks for on an instance.
const (
	// RoleMiddleware: Middleware, wrapped in at the module's Stage.
	RoleMiddleware Role = 1 << iota
	// RoleRouter: Router, consulted at the end of the chain.
	RoleRouter
	// RoleEndpoints: EndpointProvider, special paths answered before the guards.
	RoleEndpoints
	// RoleStarter: Starter, background work started before the generation takes traffic.
	RoleStarter
	// RoleStopper: Stopper, resources released when the generation is retired.
	RoleStopper
	// RoleAdmin: AdminProvider, Admin API endpoints.
	RoleAdmin
	// RoleStatus: StatusProvider, a section of GET /status.
	RoleStatus
	// RoleHostPolicy: HostPolicy, which Host values the site answers.
	RoleHostPolicy
	// RoleRouteCounter: RouteCounter, routes counted in status and start-up lines.
	RoleRouteCounter
	// RoleHeaderInjector: RequestHeaderInjector, request headers a guard sets upstream.
	RoleHeaderInjector
	// RoleAttemptObserver: AttemptObserver, told about every upstream attempt.
	RoleAttemptObserver
	// RoleDrainer: Drainer, long-lived responses ended when a shutdown starts.
	RoleDrainer
	// RoleCertificates: CertificateSource, certificates for the site's TLS handshakes.
	RoleCertificates
	// RoleALPN: ALPNProvider, extra ALPN protocols (ACME TLS-ALPN challenges).
	RoleALPN
	// RoleHTTPChallenge: HTTPChallengeHandler, ACME HTTP-01 answers on port 80.
	RoleHTTPChallenge
	// RolePacketService: PacketService, a UDP server on the site's port (HTTP/3).
	RolePacketService
	// RoleConnHandler: ConnHandler, serves the raw connections of the site's port (tcp).
	RoleConnHandler
	// RoleConnFilter: ConnFilter, decides whether a raw connection is served (IP filter).
	RoleConnFilter

	roleEnd
)

// roleIs pairs each role with its interface's name and the test for it, in bit order.
var roleIs = []struct {
	name string
	is   func(any) bool
}{
	{"Middleware", implements[Middleware]}, {"Router", implements[Router]},
	{"EndpointProvider", implements[EndpointProvider]}, {"Starter", implements[Starter]},
	{"Stopper", implements[Stopper]}, {"AdminProvider", implements[AdminProvider]},
	{"StatusProvider", implements[StatusProvider]}, {"HostPolicy", implements[HostPolicy]},
	{"RouteCounter", implements[RouteCounter]}, {"RequestHeaderInjector", implements[RequestHeaderInjector]},
	{"AttemptObserver", implements[AttemptObserver]}, {"Drainer", implements[Drainer]},
	{"CertificateSource", implements[CertificateSource]}, {"ALPNProvider", implements[ALPNProvider]},
	{"HTTPChallengeHandler", implements[HTTPChallengeHandler]}, {"PacketService", implements[PacketService]},
	{"ConnHandler", implements[ConnHandler]}, {"ConnFilter", implements[ConnFilter]},
}

// implements reports whether inst implements the interface T.
func implements[T any](inst any) bool {
	_, ok := inst.(T)
	return ok
}

// String lists the roles' interface names joined by "|".
func (r Role) String() string {
	var names []string
	for i, ri := range roleIs {
		if r&(1<<i) != 0 {
			names = append(names, ri.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// repoPath is the import path of this repository's Go module ("github.com/…/conduit").
var repoPath = strings.TrimSuffix(reflect.TypeFor[Module]().PkgPath(), "/core")

// isFirstParty reports whether pkg is a package of this repository.
func isFirstParty(pkg string) bool { return strings.HasPrefix(pkg, repoPath+"/") }

// RolesOf returns the roles inst implements. It is the one place where the core's role
// interfaces are tested against an instance.
func RolesOf(inst any) Role {
	var r Role
	for i, ri := range roleIs {
		if ri.is(inst) {
			r |= 1 << i
		}
	}
	return r
}

// CheckRoles reports an instance of m that implements a role m does not declare (declared
// is m.SiteRoles for a site instance, m.GlobalRoles for a global one). Declared roles are
// the ones an instance may play: an instance whose type depends on the config may implement
// fewer.
//
// A third-party module that declares no roles at all (written before roles existed) is not
// checked: its instances play every role they implement, as they did then. A module of this
// repository is always checked (declaring nothing means its instances play no role).
func CheckRoles(m *Module, inst any, declared Role, what string) error {
	if m.SiteRoles == 0 && m.GlobalRoles == 0 && !isFirstParty(m.Package) {
		return nil
	}
	if extra := RolesOf(inst) &^ declared; extra != 0 {
		return fmt.Errorf("module %s: its %s instance (%T) implements %s, which its registration does not declare in %sRoles",
			m.ID, what, inst, extra, strings.ToUpper(what[:1])+what[1:])
	}
	return nil
}
