// The factorial calculator of the Beyla talk, all in Go (net/http, no tracing
// library): a frontend, a backend that splits the work, and workers that
// multiply ranges. Every hop is made from a goroutine the handler starts, so
// only the goroutine tree says which request a call belongs to.
//
//	gofactorial frontend LISTEN BACKEND_URL
//	gofactorial backend LISTEN WORKER_URL [WORKER_URL...]
//	gofactorial worker LISTEN
//
// LISTEN is host:port; it prints "ready" once it listens.
package main

import (
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

var client = &http.Client{Timeout: 10 * time.Second}

// get fetches url and returns its body; run on a goroutine of its own by callers.
func get(url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

func frontend(backend string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/factorial/", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/factorial/"))
		if err != nil || n < 0 || n > 5000 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		type answer struct {
			text string
			err  error
		}
		done := make(chan answer, 1)
		go func() {
			text, err := get(fmt.Sprintf("%s/compute?n=%d", backend, n))
			done <- answer{text, err}
		}()
		a := <-done
		if a.err != nil {
			http.Error(w, a.err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "%d! = %s\n", n, a.text)
	})
	return mux
}

// backend splits 1..n into one range per worker and asks them in parallel.
func backend(workers []string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/compute", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		parts := make([]*big.Int, len(workers))
		errs := make([]error, len(workers))
		var wg sync.WaitGroup
		step := n/len(workers) + 1
		for i, worker := range workers {
			from, to := i*step+1, (i+1)*step
			if to > n {
				to = n
			}
			wg.Add(1)
			go func(i int, worker string, from, to int) {
				defer wg.Done()
				text, err := get(fmt.Sprintf("%s/multiply?from=%d&to=%d", worker, from, to))
				if err == nil {
					parts[i], _ = new(big.Int).SetString(text, 10)
					if parts[i] == nil {
						err = fmt.Errorf("%s: not a number", worker)
					}
				}
				errs[i] = err
			}(i, worker, from, to)
		}
		wg.Wait()
		f := big.NewInt(1)
		for i := range workers {
			if errs[i] != nil {
				http.Error(w, errs[i].Error(), http.StatusBadGateway)
				return
			}
			f.Mul(f, parts[i])
		}
		fmt.Fprintln(w, f.String())
	})
	return mux
}

func worker() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/multiply", func(w http.ResponseWriter, r *http.Request) {
		from, err1 := strconv.Atoi(r.URL.Query().Get("from"))
		to, err2 := strconv.Atoi(r.URL.Query().Get("to"))
		if err1 != nil || err2 != nil {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		f := big.NewInt(1)
		for i := from; i <= to; i++ {
			f.Mul(f, big.NewInt(int64(i)))
		}
		fmt.Fprintln(w, f.String())
	})
	return mux
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: gofactorial frontend|backend|worker LISTEN [URL...]")
		os.Exit(2)
	}
	var h http.Handler
	switch os.Args[1] {
	case "frontend":
		h = frontend(os.Args[3])
	case "backend":
		h = backend(os.Args[3:])
	case "worker":
		h = worker()
	default:
		fmt.Fprintln(os.Stderr, "unknown role", os.Args[1])
		os.Exit(2)
	}
	l, err := net.Listen("tcp", os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready")
	if err := http.Serve(l, h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
