package h1guard

// ServeHTTP1 lets the external test package choose the HTTP/1 server of startServer.
var ServeHTTP1 = &serveHTTP1
