package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoticeIsCurrent regenerates NOTICE from the full binary's build list and fails when
// the checked-in file differs (a dependency added, removed or upgraded).
func TestNoticeIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("lists the full binary's packages for three systems")
	}
	root := filepath.Join("..", "..")
	want, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "NOTICE"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("NOTICE is out of date: run `go run ./cmd/notice -o NOTICE`\n--- generated ---\n%s", want)
	}
	if !strings.Contains(string(got), "google.golang.org/grpc ") {
		t.Fatal("NOTICE does not list gRPC, which the full binary bundles")
	}
}

func TestLicenceOf(t *testing.T) {
	apache, err := os.ReadFile(filepath.Join("..", "..", "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		mit  = "Permission is hereby granted, free of charge, to any person obtaining a copy\nof this software"
		bsd3 = "Redistribution and use in source and binary forms, with or without\nmodification, are permitted.\n* Neither the name of Google Inc. nor the names of its contributors may be used\nTHIS SOFTWARE IS PROVIDED BY"
		bsd2 = "Redistribution and use in source and binary forms, with or without modification.\nTHIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS. Neither the name of anything later"
	)
	for _, tc := range []struct {
		name, file, text, want string
	}{
		{"apache", "LICENSE", string(apache), "Apache-2.0"},
		{"mit", "LICENSE.txt", mit, "MIT"},
		{"bsd3", "LICENSE", bsd3, "BSD-3-Clause"},
		{"bsd2 (the endorsement clause after the disclaimer does not count)", "LICENSE", bsd2, "BSD-2-Clause"},
		{"several, in text order", "COPYING", bsd3 + "\n" + string(apache) + "\n" + mit, "BSD-3-Clause, Apache-2.0, MIT"},
		{"unknown", "LICENSE", "All rights reserved.", ""},
		{"none", "README", "no licence here", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := licenceOf(dir)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q %v, want %q", got, err, tc.want)
			}
		})
	}
}
