package services

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The http service answers on TCP port 80 with net/http's Server:
//
//	GET /          a page naming the host, its interfaces, and both ends of
//	               the connection as the server sees them
//	GET /bytes/N   N bytes (0 <= N <= 10 GiB) of a fixed pattern, see bytesBlock
//	anything else  404 (405 for another method on those two paths)
//
// The page is HTML when the request's Accept header names text/html (with a
// q-value above 0), as every browser's does, and plain text otherwise: curl,
// wget, labctl fetch and nc all get text, and so does "Accept: text/plain".

// maxBytes is the largest N of /bytes/N.
const maxBytes = 10 << 30

const (
	// readHeaderTimeout bounds a client that connects and says nothing, or
	// sends its request head slowly (slowloris).
	readHeaderTimeout = 10 * time.Second
	// idleTimeout closes keep-alive connections nobody uses.
	idleTimeout = 2 * time.Minute
	// There is no ReadTimeout or WriteTimeout: they would cut a long
	// /bytes download over a slow, impaired link. (ReadTimeout would also
	// leave a read deadline that cancels the request's context mid-body.)
)

func (s *Set) startHTTP(n Net) error {
	l, err := n.ListenTCP(portHTTP)
	if err != nil {
		return fmt.Errorf("service http: listen tcp port %d: %w", portHTTP, err)
	}
	log := s.log.With("service", "http", "proto", "tcp")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveIndex)
	mux.HandleFunc("GET /bytes/{n}", serveBytes)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Server", "labnet")
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		// net/http starts a goroutine per connection; count each in the
		// set's WaitGroup from StateNew (reported before the goroutine
		// starts, by Serve, which holds its own count) to StateClosed
		// (reported last thing by that goroutine), so Close waits for them.
		ConnState: func(c net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.wg.Add(1)
				log.Debug("connection open", "remote", c.RemoteAddr().String())
				// Serve tracks a connection (then calls this hook) only
				// after Accept returns, so srv.Close can miss one accepted
				// at that moment, which would then wait for the
				// ReadHeaderTimeout; close it here instead.
				if s.isStopped() {
					c.Close()
				}
			case http.StateClosed, http.StateHijacked:
				log.Debug("connection closed", "remote", c.RemoteAddr().String())
				s.wg.Done()
			}
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if !s.addServer(srv) {
		l.Close()
		return errStopped
	}
	log.Debug("listening", "addr", l.Addr().String())
	s.wg.Go(func() {
		// Serve closes l when it returns; stop's srv.Close makes it return,
		// even when it comes before Serve has started.
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("serve failed", "err", err)
		}
	})
	return nil
}

// page is what the index page shows.
type page struct {
	Host       string // "lab/name"
	Node       string
	Interfaces []InterfaceInfo
	ClientIP   string
	ClientPort string
	ServerIP   string
	ServerPort string
}

func (s *Set) serveIndex(w http.ResponseWriter, r *http.Request) {
	p := page{Host: s.host.Name, Node: s.host.Node, Interfaces: s.host.Interfaces}
	if s.host.Lab != "" {
		p.Host = s.host.Lab + "/" + s.host.Name
	}
	p.ClientIP, p.ClientPort = endpoint(r.RemoteAddr)
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		p.ServerIP, p.ServerPort = endpoint(a.String())
	}

	var b bytes.Buffer
	h := w.Header()
	if wantsHTML(r.Header.Values("Accept")) {
		if err := indexHTML.Execute(&b, p); err != nil {
			http.Error(w, "page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
	} else {
		writeIndexText(&b, p)
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Vary", "Accept")
	h.Set("Cache-Control", "no-store") // the page names the client's port
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

// wantsHTML reports whether the Accept header values name text/html with a
// q-value above 0 (RFC 9110 §12.5.1). Wildcards do not count: curl sends
// "*/*" and reads text best.
func wantsHTML(accept []string) bool {
	for _, v := range accept {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != "text/html" {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// endpoint splits "ip:port" (r.RemoteAddr, a net.Addr's String) for
// display, showing an IPv4-mapped IPv6 address as IPv4.
func endpoint(hostport string) (ip, port string) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap().String(), strconv.Itoa(int(ap.Port()))
	}
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		return h, p
	}
	return hostport, "?"
}

func writeIndexText(b *bytes.Buffer, p page) {
	fmt.Fprintf(b, "labnet host %s", p.Host)
	if p.Node != "" {
		fmt.Fprintf(b, " (node %s)", p.Node)
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "interface\tnetwork\taddresses")
	for _, ifc := range p.Interfaces {
		addrs := make([]string, len(ifc.Addresses))
		for i, a := range ifc.Addresses {
			addrs[i] = a.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", ifc.Name, ifc.Network, strings.Join(addrs, " "))
	}
	tw.Flush()
	fmt.Fprintf(b, "\nYou are %s port %s\n", p.ClientIP, p.ClientPort)
	fmt.Fprintf(b, "I am %s port %s\n", p.ServerIP, p.ServerPort)
}

var indexHTML = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Host}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 0.2em 1em 0.2em 0; }
</style>
</head>
<body>
<h1>labnet host {{.Host}}</h1>
{{with .Node}}<p>Running on labd node {{.}}.</p>
{{end}}<table>
<tr><th>interface</th><th>network</th><th>addresses</th></tr>
{{range .Interfaces}}<tr><td>{{.Name}}</td><td>{{.Network}}</td><td>{{range $i, $a := .Addresses}}{{if $i}}, {{end}}{{$a}}{{end}}</td></tr>
{{end}}</table>
<p>You are {{.ClientIP}} port {{.ClientPort}}</p>
<p>I am {{.ServerIP}} port {{.ServerPort}}</p>
</body>
</html>
`))

// bytesBlock is the pattern /bytes/N repeats: the body is bytesBlock again
// and again, cut after N bytes. It is 65536 bytes of printable lines, 1024
// lines of 64 bytes; line k (0..1023) is the line's offset in the block,
// k*64, as 4 lowercase hex digits, a space, 58 characters of RFC 864's ring
// ('!' .. '~', ' ') starting at ring[k mod 95], and "\n":
//
//	0000 !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ
//	0040 "#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[
//
// So the body can be checked against a hash, and a misplaced stretch of it
// (a TCP bug) shows up in a hex dump as lines out of order.
var bytesBlock = func() []byte {
	const lines, lineLen = 1024, 64
	b := make([]byte, 0, lines*lineLen)
	for k := range lines {
		b = fmt.Appendf(b, "%04x ", k*lineLen)
		for i := range lineLen - 6 {
			b = append(b, chargenRing[(k+i)%chargenRingLen])
		}
		b = append(b, '\n')
	}
	return b
}()

// serveBytes answers /bytes/N with N bytes of bytesBlock's pattern.
func serveBytes(w http.ResponseWriter, r *http.Request) {
	arg := r.PathValue("n")
	n, err := strconv.ParseUint(arg, 10, 64)
	if err != nil || n > maxBytes {
		http.Error(w, fmt.Sprintf("bad byte count %q: want a whole number from 0 to %d", arg, uint64(maxBytes)), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatUint(n, 10))
	if r.Method == http.MethodHead {
		return
	}
	for n > 0 {
		chunk := bytesBlock[:min(n, uint64(len(bytesBlock)))]
		if _, err := w.Write(chunk); err != nil {
			return // the client went away, or the set is closing
		}
		n -= uint64(len(chunk))
	}
}
