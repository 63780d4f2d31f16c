package authutil

import "net/url"

func unescape(s string) (string, error) { return url.QueryUnescape(s) }
