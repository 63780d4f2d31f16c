package main

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// services are what some rows share and the harness starts once per run: a TLS certificate,
// JWT keys and tokens with a JWKS endpoint, and a redis-server.
type services struct {
	cert, key, certKey string // PEM files: certificate, key, both (HAProxy's crt)
	jwtSecret          string
	tokenHS, tokenRS   string
	jwksURL            string
	jwksSrv            *http.Server
	redis              *proc
	redisAddr          string
	redisErr           string // why the Redis rows are skipped
	authz              *proc
	authzGRPC          string // ext_authz gRPC address of the authorization service
	authzHTTP          string // forwardAuth HTTP address of the authorization service
	authzErr           string // why the authorization rows are skipped
}

// writeCert generates a self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost.
func writeCert(dir string) (cert, key, both string, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", fmt.Errorf("cert key: %w", err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "conduit-bench"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &priv.PublicKey, priv)
	if err != nil {
		return "", "", "", fmt.Errorf("create cert: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", "", fmt.Errorf("marshal cert key: %w", err)
	}
	cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kp := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	cert, key, both = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert-key.pem")
	for path, data := range map[string][]byte{cert: cp, key: kp, both: append(append([]byte{}, cp...), kp...)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return "", "", "", fmt.Errorf("write %s: %w", path, err)
		}
	}
	return cert, key, both, nil
}

// b64 is unpadded base64url, as JOSE uses.
func b64(p []byte) string { return base64.RawURLEncoding.EncodeToString(p) }

// signJWT returns a compact JWS of claims with header h, signed by sign.
func signJWT(h, claims map[string]any, sign func([]byte) ([]byte, error)) (string, error) {
	hj, _ := json.Marshal(h)
	cj, _ := json.Marshal(claims)
	input := b64(hj) + "." + b64(cj)
	sig, err := sign([]byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}

// benchClaims are a long-lived token's claims (valid for a year).
func benchClaims() map[string]any {
	now := time.Now().Unix()
	return map[string]any{"sub": "conduit-bench", "iat": now, "nbf": now - 60, "exp": now + 365*24*3600}
}

// startJWT makes an HS256 secret and token, an RSA-2048 key with an RS256 token, and serves
// the RSA key as a JWKS on 127.0.0.1 from this process.
func (s *services) startJWT() error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("jwt secret: %w", err)
	}
	s.jwtSecret = b64(secret) // 43 ASCII characters, used as the raw HMAC key
	var err error
	s.tokenHS, err = signJWT(map[string]any{"alg": "HS256", "typ": "JWT"}, benchClaims(), func(in []byte) ([]byte, error) {
		m := hmac.New(sha256.New, []byte(s.jwtSecret))
		m.Write(in)
		return m.Sum(nil), nil
	})
	if err != nil {
		return fmt.Errorf("hs256 token: %w", err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("rsa key: %w", err)
	}
	const kid = "conduit-bench-1"
	s.tokenRS, err = signJWT(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, benchClaims(), func(in []byte) ([]byte, error) {
		d := sha256.Sum256(in)
		return rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, d[:])
	})
	if err != nil {
		return fmt.Errorf("rs256 token: %w", err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(rk.N.Bytes()), "e": b64(big.NewInt(int64(rk.E)).Bytes()),
	}}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("jwks listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	s.jwksSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.jwksSrv.Serve(l) }()
	s.jwksURL = "http://" + l.Addr().String() + "/jwks.json"
	return nil
}

// token returns the bearer token for a variant's Auth, or "".
func (s *services) token(auth string) string {
	switch auth {
	case "hs256":
		return s.tokenHS
	case "rs256":
		return s.tokenRS
	}
	return ""
}

// startRedis starts redis-server on a free port, pinned to the load CPU, without
// persistence; when it is missing, the reason is kept and the Redis rows are skipped.
func (s *services) startRedis(b *bench) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		s.redisErr = "redis-server not installed (Debian package redis-server; run with -install)"
		return
	}
	dir, err := os.MkdirTemp(b.workDir, "redis-")
	if err != nil {
		s.redisErr = "redis temp dir: " + err.Error()
		return
	}
	port, err := freePort()
	if err != nil {
		s.redisErr = err.Error()
		return
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := startProc("redis", b.cfg.cpuLoad, filepath.Join(dir, "redis.log"), nil,
		"redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--protected-mode", "yes")
	if err != nil {
		s.redisErr = err.Error()
		return
	}
	if err := waitListening(p, addr, 10*time.Second); err != nil {
		p.stop()
		s.redisErr = "redis-server: " + err.Error()
		return
	}
	s.redis, s.redisAddr = p, addr
}

// redisDBSize asks the redis-server how many keys it holds.
func redisDBSize(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "*1\r\n$6\r\nDBSIZE\r\n"); err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	if !strings.HasPrefix(line, ":") {
		return 0, fmt.Errorf("redis DBSIZE answered %q", strings.TrimSpace(line))
	}
	return strconv.Atoi(strings.TrimSpace(line[1:]))
}

// startAuthz builds ./cmd/conduit-bench/authz and starts it pinned to the load CPU, with an
// ext_authz gRPC and a forwardAuth HTTP listener; when it cannot, the reason is kept and the
// authorization rows are skipped.
func (s *services) startAuthz(b *bench) {
	dir, err := os.MkdirTemp(b.workDir, "authz-")
	if err != nil {
		s.authzErr = "authz temp dir: " + err.Error()
		return
	}
	bin := filepath.Join(dir, "authz")
	if err := goBuild(b.cfg.repo, bin, "./cmd/conduit-bench/authz"); err != nil {
		s.authzErr = err.Error()
		return
	}
	ports, err := freePorts(2)
	if err != nil {
		s.authzErr = err.Error()
		return
	}
	g, h := "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	p, err := startProc("authz", b.cfg.cpuLoad, filepath.Join(dir, "authz.log"), nil, bin, "-grpc", g, "-http", h)
	if err != nil {
		s.authzErr = err.Error()
		return
	}
	for _, a := range []string{g, h} {
		if err := waitListening(p, a, 10*time.Second); err != nil {
			p.stop()
			s.authzErr = "authz: " + err.Error()
			return
		}
	}
	s.authz, s.authzGRPC, s.authzHTTP = p, g, h
}

// stop ends what startJWT, startRedis and startAuthz started.
func (s *services) stop() {
	if s.authz != nil {
		s.authz.stop()
	}
	if s.jwksSrv != nil {
		_ = s.jwksSrv.Close()
	}
	if s.redis != nil {
		s.redis.stop()
	}
}
