// The factorial calculator of the Beyla talk, all in Go (net/http and gRPC,
// no tracing library): a frontend, a backend that splits the work, and
// workers that multiply ranges, over HTTP or gRPC. Every hop is made from a
// goroutine the handler starts, so only the goroutine tree says which request
// a call belongs to.
//
//	gofactorial frontend LISTEN BACKEND_URL
//	gofactorial backend LISTEN WORKER_URL [WORKER_URL...]   (http://host:port or grpc://host:port)
//	gofactorial worker LISTEN
//	gofactorial grpcworker LISTEN
//	gofactorial get      (reads "[METHOD] URL [TRACEPARENT|- [EXTRA_HEADERS [NAME=VALUE...]]]" lines, %20 a space in a VALUE;
//	                      fetches each from a goroutine
//	                      (a method other than GET sends a body), prints the status;
//	                      GOFACTORIAL_INSECURE=1 accepts any HTTPS certificate)
//
// LISTEN is host:port; it prints "ready" once it listens. Built with Debian's
// Go and golang-google-grpc-dev, GO111MODULE=off, nothing downloaded.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
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

	"github.com/golang/protobuf/ptypes/wrappers"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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

// The workers' gRPC service, declared by hand (there is no protoc here):
// Multiply takes "from,to" and answers the product, both as StringValue.
type multiplier interface {
	Multiply(context.Context, *wrappers.StringValue) (*wrappers.StringValue, error)
}

var workerService = grpc.ServiceDesc{
	ServiceName: "factorial.Worker",
	HandlerType: (*multiplier)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Multiply",
		Handler: func(srv interface{}, ctx context.Context, dec func(interface{}) error, _ grpc.UnaryServerInterceptor) (interface{}, error) {
			in := new(wrappers.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(multiplier).Multiply(ctx, in)
		},
	}},
	Metadata: "factorial.proto",
}

type grpcWorker struct{}

func (grpcWorker) Multiply(_ context.Context, in *wrappers.StringValue) (*wrappers.StringValue, error) {
	var from, to int
	if _, err := fmt.Sscanf(in.Value, "%d,%d", &from, &to); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "bad range %q", in.Value)
	}
	return &wrappers.StringValue{Value: product(from, to).String()}, nil
}

func product(from, to int) *big.Int {
	f := big.NewInt(1)
	for i := from; i <= to; i++ {
		f.Mul(f, big.NewInt(int64(i)))
	}
	return f
}

// multiplyOn asks one worker for the product of from..to, over HTTP or over a gRPC connection.
func multiplyOn(worker string, conns map[string]*grpc.ClientConn, from, to int) (string, error) {
	if conn := conns[worker]; conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out := new(wrappers.StringValue)
		err := conn.Invoke(ctx, "/factorial.Worker/Multiply", &wrappers.StringValue{Value: fmt.Sprintf("%d,%d", from, to)}, out)
		return out.Value, err
	}
	return get(fmt.Sprintf("%s/multiply?from=%d&to=%d", worker, from, to))
}

// backend splits 1..n into one range per worker and asks them in parallel.
func backend(workers []string) http.Handler {
	conns := map[string]*grpc.ClientConn{}
	for _, w := range workers {
		if strings.HasPrefix(w, "grpc://") {
			conn, err := grpc.Dial(strings.TrimPrefix(w, "grpc://"), grpc.WithInsecure())
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			conns[w] = conn
		}
	}
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
				text, err := multiplyOn(worker, conns, from, to)
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
		fmt.Fprintln(w, product(from, to).String())
	})
	return mux
}

// fetchLines is a client only: each request waits for its line, so whoever
// drives it decides when (after the agent has its probes on it, say). A
// TRACEPARENT given is set as the request's own header, as a tracing library would;
// EXTRA more headers after it (X-Extra-0, ...) make its header map grow.
//   [METHOD] URL [TRACEPARENT|- [EXTRA]]  (a METHOD but GET sends a body; - sets no traceparent)
func fetchLines() {
	if os.Getenv("GOFACTORIAL_INSECURE") == "1" {
		// A test's self-signed HTTPS server.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fields := strings.Fields(in.Text())
		if len(fields) == 0 {
			continue
		}
		method := "GET"
		if !strings.Contains(fields[0], "://") {
			method, fields = fields[0], fields[1:]
		}
		done := make(chan string)
		go func() {
			var body io.Reader
			if method != "GET" {
				body = strings.NewReader("n=20")
			}
			req, err := http.NewRequest(method, fields[0], body)
			if err != nil {
				done <- err.Error()
				return
			}
			if len(fields) > 1 && fields[1] != "-" {
				req.Header.Set("Traceparent", fields[1])
			}
			if len(fields) > 2 {
				extra, _ := strconv.Atoi(fields[2])
				for i := 0; i < extra; i++ {
					req.Header.Set(fmt.Sprintf("X-Extra-%d", i), "v")
				}
			}
			if len(fields) > 3 {
				for _, header := range fields[3:] { // NAME=VALUE, %20 for a space
					if name, value, ok := strings.Cut(header, "="); ok {
						req.Header.Set(name, strings.ReplaceAll(value, "%20", " "))
					}
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				done <- err.Error()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- resp.Status
		}()
		fmt.Println(<-done)
	}
}

func main() {
	if len(os.Args) < 2 || (len(os.Args) < 3 && os.Args[1] != "get") {
		fmt.Fprintln(os.Stderr, "usage: gofactorial frontend|backend|worker|grpcworker LISTEN [URL...]")
		os.Exit(2)
	}
	if len(os.Args) == 2 && os.Args[1] == "get" {
		fetchLines()
		return
	}
	if os.Args[1] == "grpcworker" {
		l, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s := grpc.NewServer()
		s.RegisterService(&workerService, grpcWorker{})
		fmt.Println("ready")
		if err := s.Serve(l); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
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
	var err2 error
	if cert, key := os.Getenv("GOFACTORIAL_TLS_CERT"), os.Getenv("GOFACTORIAL_TLS_KEY"); cert != "" {
		// HTTPS through Go's own crypto/tls: what the Go TLS probes read.
		err2 = http.ServeTLS(l, h, cert, key)
	} else {
		err2 = http.Serve(l, h)
	}
	if err2 != nil {
		fmt.Fprintln(os.Stderr, err2)
		os.Exit(1)
	}
}
