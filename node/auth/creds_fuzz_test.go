package auth

import (
	"io"
	"net"
	"testing"
	"time"
)

// FuzzServerHandshake feeds arbitrary first bytes to the API listener's
// handshake: it never panics, and returns within its deadline whatever
// the client sends, whether it then hangs up or stays silent.
func FuzzServerHandshake(f *testing.F) {
	ca, err := NewCA()
	if err != nil {
		f.Fatal(err)
	}
	n := signTestNode(f, ca, "n", true)
	cert, err := TLSCertificate(n.key, n.certDER, ca.Cert)
	if err != nil {
		f.Fatal(err)
	}
	cfg := ServerTLSConfig(ca.Cert, cert)
	const timeout = 100 * time.Millisecond

	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), true, false)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), true, true)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), false, false)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), false, true)
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00}, true, false)
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00}, true, true)
	f.Add([]byte{0x16}, false, false)
	f.Add([]byte{0x16}, false, true)
	f.Add([]byte{0x16, 0x03, 0x03, 0xff, 0xff}, true, false)
	f.Add([]byte{0x16, 0x03, 0x03, 0xff, 0xff}, true, true)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), false, false)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), false, true)
	f.Add([]byte{}, true, false)
	f.Add([]byte{}, true, true)
	f.Fuzz(func(t *testing.T, data []byte, allowPlain, hangUp bool) {
		creds := ServerCreds(cfg, allowPlain).(*sniffCreds)
		creds.timeout = timeout
		server, client := net.Pipe()
		defer client.Close()
		go func() {
			client.Write(data)
			if hangUp {
				client.Close()
				return
			}
			io.Copy(io.Discard, client) // alerts, until the server closes
		}()
		start := time.Now()
		conn, _, err := creds.ServerHandshake(server)
		if took := time.Since(start); took > timeout+2*time.Second {
			t.Errorf("ServerHandshake took %v, deadline %v", took, timeout)
		}
		if err == nil {
			if len(data) == 0 || data[0] == recordTypeHandshake || !allowPlain {
				t.Errorf("handshake passed: first bytes %x, allowPlain %v", data, allowPlain)
			}
			// The peeked byte is replayed.
			b := make([]byte, len(data))
			conn.SetDeadline(time.Now().Add(time.Second))
			if _, err := io.ReadFull(conn, b); (err != nil || string(b) != string(data)) && !hangUp {
				t.Errorf("read %x, %v; want %x", b, err, data)
			}
			conn.Close()
		}
		server.Close()
	})
}
