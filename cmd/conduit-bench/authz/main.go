// Command authz is the allow-all service of conduit-bench's external-service rows: an
// Envoy ext_authz gRPC server (envoy.service.auth.v3.Authorization/Check) for the
// conduit-extauthz row, an Envoy ext_proc server that changes nothing
// (envoy.service.ext_proc.v3.ExternalProcessor/Process) for the conduit-extproc row, both
// on the -grpc listener, and a forwardAuth HTTP endpoint for the conduit-forwardauth row, so
// the ways of asking an external service are measured against the same decision. All allow
// every request except those for DeniedPath, which the harness's checks use to prove the
// stage is active.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// DeniedPath is the one path both services deny (403).
const DeniedPath = "/bench-denied"

type server struct {
	authv3.UnimplementedAuthorizationServer
}

var (
	ok     = &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.OK)}}
	denied = &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}}
)

// Check implements authv3.AuthorizationServer.
func (server) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	if req.GetAttributes().GetRequest().GetHttp().GetPath() == DeniedPath {
		return denied, nil
	}
	return ok, nil
}

// processor continues every phase unchanged, and answers DeniedPath 403 itself.
type processor struct {
	procv3.UnimplementedExternalProcessorServer
}

var (
	continueRequest  = &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestHeaders{RequestHeaders: &procv3.HeadersResponse{}}}
	continueResponse = &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &procv3.HeadersResponse{}}}
	forbid           = &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &procv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden}}}}
)

// Process implements procv3.ExternalProcessorServer.
func (processor) Process(s grpc.BidiStreamingServer[procv3.ProcessingRequest, procv3.ProcessingResponse]) error {
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		resp := continueResponse
		if rh := req.GetRequestHeaders(); rh != nil {
			resp = continueRequest
			for _, h := range rh.GetHeaders().GetHeaders() {
				if h.GetKey() == ":path" && string(h.GetRawValue()) == DeniedPath {
					resp = forbid
				}
			}
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

func main() {
	grpcAddr := flag.String("grpc", "127.0.0.1:0", "address of the ext_authz gRPC server")
	httpAddr := flag.String("http", "127.0.0.1:0", "address of the forwardAuth HTTP endpoint (/verify)")
	flag.Parse()
	gl, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		log.Fatal(err)
	}
	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		log.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, server{})
	procv3.RegisterExternalProcessorServer(gs, processor{})
	go func() { log.Fatal(gs.Serve(gl)) }()
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Forwarded-Uri") == DeniedPath {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	log.Fatal(hs.Serve(hl))
}
