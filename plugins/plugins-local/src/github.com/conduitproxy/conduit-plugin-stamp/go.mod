module github.com/conduitproxy/conduit-plugin-stamp

go 1.22
