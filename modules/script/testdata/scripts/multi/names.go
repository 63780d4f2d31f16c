package multi

// headerName is used by handler.go: the two files are one package.
const headerName = "X-Multi"

func greeting() string { return "from two files" }
