// The Go backend of the polyglot scenario: net/http only, no tracing library.
// Loupe sees it from the kernel side (its own goroutine probes are issue 9).
//   backend PORT [LISTEN_ADDR]   (127.0.0.1 unless given: 0.0.0.0 in a container)
package main

import (
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
)

func main() {
	http.HandleFunc("/compute", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		f := big.NewInt(1)
		for i := 2; i <= n; i++ {
			f.Mul(f, big.NewInt(int64(i)))
		}
		fmt.Fprintln(w, f.String())
	})
	addr := "127.0.0.1"
	if len(os.Args) > 2 {
		addr = os.Args[2]
	}
	l, err := net.Listen("tcp", net.JoinHostPort(addr, os.Args[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	if err := http.Serve(l, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
