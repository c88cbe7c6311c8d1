package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

// runEnv runs labctl with exactly env as its environment (no --server
// added).
func runEnv(ctx context.Context, env map[string]string, args ...string) result {
	var out, errb bytes.Buffer
	code := Run(ctx, args, strings.NewReader(""), &out, &errb,
		WithClock(stepClock(t0, time.Second)), WithEnv(func(k string) string { return env[k] }))
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// writeTestConfig writes cfg as the config file under a fresh
// XDG_CONFIG_HOME and returns that environment.
func writeTestConfig(t *testing.T, cfg *Config) map[string]string {
	t.Helper()
	env := map[string]string{envConfigHome: t.TempDir()}
	if cfg != nil {
		if err := writeConfig(configPath(func(k string) string { return env[k] }), cfg); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

func readTestConfig(t *testing.T, env map[string]string) *Config {
	t.Helper()
	cfg, _, err := readConfig(configPath(func(k string) string { return env[k] }))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfigPath(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{envConfigHome: "/x", envHome: "/home/u"}, "/x/labctl/config"},
		{map[string]string{envHome: "/home/u"}, "/home/u/.config/labctl/config"},
		{nil, ""},
	} {
		if got := configPath(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("configPath(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestConfigFileRoundTrip(t *testing.T) {
	pki := newTestPKI(t)
	path := filepath.Join(t.TempDir(), "labctl", "config")
	want := &Config{CurrentContext: "alice@10.0.0.5:7700", Contexts: []*ConfigContext{
		{Name: "alice@10.0.0.5:7700", Server: "10.0.0.5:7700", CA: pemOf(pki.ca), Token: "lnt_abcdefghij_secret"},
		{Name: "local", Server: "127.0.0.1:7700"},
	}}
	if err := writeConfig(path, want); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v, want 0600", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("config directory holds %d files, want 1 (no temporary file left)", len(entries))
	}
	b, _ := os.ReadFile(path)
	for _, s := range []string{"current-context: alice@10.0.0.5:7700\n", "    ca: |\n      -----BEGIN CERTIFICATE-----\n"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("config file lacks %q:\n%s", s, b)
		}
	}
	got, loose, err := readConfig(path)
	if err != nil || loose {
		t.Fatalf("readConfig: loose %v, %v", loose, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// A rewrite keeps 0600 even over a file that had a looser mode.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, loose, _ := readConfig(path); !loose {
		t.Error("a 0644 config is not reported as loose")
	}
	if err := writeConfig(path, want); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("rewritten config mode %v, want 0600", st.Mode().Perm())
	}

	for _, bad := range []string{"contexts: [{server: x}]\n", "contexts: [{name: a}, {name: a}]\n", "contexts: 3\n"} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readConfig(path); err == nil || !strings.HasPrefix(err.Error(), "config "+path+": ") {
			t.Errorf("readConfig(%q) = %v, want an error naming the file", bad, err)
		}
	}
}

func TestConfigLooseModeWarning(t *testing.T) {
	env := writeTestConfig(t, &Config{Contexts: []*ConfigContext{{Name: "a", Server: "127.0.0.1:1"}}})
	path := configPath(func(k string) string { return env[k] })
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	got := runEnv(t.Context(), env, "config", "get-contexts")
	want := "warning: " + path + " holds tokens and others may read it: run chmod 600 " + path + "\n"
	if got.code != 0 || got.stderr != want {
		t.Errorf("code %d, stderr:\n got %q\nwant %q", got.code, got.stderr, want)
	}
}

func TestConfigCommands(t *testing.T) {
	env := writeTestConfig(t, &Config{CurrentContext: "a", Contexts: []*ConfigContext{
		{Name: "a", Server: "127.0.0.1:1", Token: "lnt_aaaaaaaaaa_secret"},
		{Name: "b", Server: "127.0.0.2:1"},
	}})
	steps := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{args: []string{"config", "current-context"}, stdout: "a\n"},
		{args: []string{"config", "get-contexts"}, stdout: "CURRENT   NAME   SERVER        TOKEN\n" +
			"*         a      127.0.0.1:1   aaaaaaaaaa\n" +
			"          b      127.0.0.2:1   <none>\n"},
		{args: []string{"config", "use-context", "b"}, stdout: "Switched to context \"b\".\n"},
		{args: []string{"config", "current-context"}, stdout: "b\n"},
		{args: []string{"config", "use-context", "c"}, code: 1,
			stderr: "error: no context \"c\" in " + env[envConfigHome] + "/labctl/config (labctl config get-contexts lists them)\n"},
		{args: []string{"config", "delete-context", "b"}, stdout: "Deleted context \"b\".\n"},
		{args: []string{"config", "current-context"}, code: 1, stderr: "error: no current context: labctl login makes one\n"},
		{args: []string{"config", "delete-context", "b"}, code: 1, stderr: "error: no context \"b\" in " + env[envConfigHome] + "/labctl/config\n"},
		{args: []string{"config", "use-context"}, code: 1, stderr: "error: labctl config use-context needs NAME (got 0 arguments)\n"},
		{args: []string{"--context", "gone", "get", "labs"}, code: 1,
			stderr: "error: no context \"gone\" in " + env[envConfigHome] + "/labctl/config (labctl config get-contexts lists them)\n"},
	}
	for _, s := range steps {
		got := runEnv(t.Context(), env, s.args...)
		if got.code != s.code || got.stdout != s.stdout || got.stderr != s.stderr {
			t.Errorf("labctl %s: code %d\nstdout %q\nwant   %q\nstderr %q\nwant   %q", strings.Join(s.args, " "), got.code, got.stdout, s.stdout, got.stderr, s.stderr)
		}
	}
	if cfg := readTestConfig(t, env); len(cfg.Contexts) != 1 || cfg.Contexts[0].Name != "a" || cfg.CurrentContext != "" {
		t.Errorf("config after the steps: %+v", cfg)
	}
}

// TestContextSwitching checks that calls go to the current context's
// server with its token, and that LABCTL_SERVER / LABCTL_TOKEN and the
// flags override it.
func TestContextSwitching(t *testing.T) {
	f1, f2 := newFakeServer(), newFakeServer()
	a1, a2 := f1.start(t), f2.start(t)
	env := writeTestConfig(t, &Config{CurrentContext: "one", Contexts: []*ConfigContext{
		{Name: "one", Server: a1, Token: "lnt_one0000000_s"},
		{Name: "two", Server: a2, Token: "lnt_two0000000_s"},
	}})
	run := func(extra map[string]string, args ...string) {
		t.Helper()
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		for k, v := range extra {
			e[k] = v
		}
		if got := runEnv(t.Context(), e, args...); got.code != 0 {
			t.Fatalf("labctl %s: code %d, stderr %q", strings.Join(args, " "), got.code, got.stderr)
		}
	}
	run(nil, "get", "node", "n1")
	run(nil, "--context", "two", "get", "node", "n1")
	run(nil, "config", "use-context", "two")
	run(nil, "get", "node", "n1")
	run(map[string]string{EnvServer: a1}, "get", "node", "n1")
	run(map[string]string{EnvToken: "lnt_env0000000_s"}, "get", "node", "n1")
	run(map[string]string{EnvToken: "lnt_env0000000_s"}, "--token", "lnt_flag000000_s", "--server", a1, "get", "node", "n1")
	if diff := cmp.Diff([]string{
		"GetNode lnt_one0000000_s",
		"GetNode lnt_two0000000_s", // LABCTL_SERVER: context two's token
		"GetNode lnt_flag000000_s",
	}, f1.seenCalls()); diff != "" {
		t.Errorf("server one saw (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{
		"GetNode lnt_two0000000_s",
		"GetNode lnt_two0000000_s",
		"GetNode lnt_env0000000_s",
	}, f2.seenCalls()); diff != "" {
		t.Errorf("server two saw (-want +got):\n%s", diff)
	}
}

// TestLocalAdminCredential: with no context and no token, a loopback
// server's labd data directory gives the token and the CA.
func TestLocalAdminCredential(t *testing.T) {
	pki := newTestPKI(t)
	const admin = "lnt_admin00000_secret"
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, adminTokenFile), []byte(admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("plaintext", func(t *testing.T) {
		f := newFakeServer()
		addr := f.start(t)
		for _, env := range []map[string]string{
			{envLabdData: data},
			{envStateHome: filepath.Dir(data), envHome: "/nonexistent"},
		} {
			if env[envStateHome] != "" {
				// $XDG_STATE_HOME/labd.
				link := filepath.Join(t.TempDir(), "labd")
				if err := os.Symlink(data, link); err != nil {
					t.Fatal(err)
				}
				env[envStateHome] = filepath.Dir(link)
			}
			if got := runEnv(t.Context(), env, "--server", addr, "get", "node", "n1"); got.code != 0 {
				t.Fatalf("code %d, stderr %q", got.code, got.stderr)
			}
		}
		// A token from the environment wins: no local credential.
		runEnv(t.Context(), map[string]string{envLabdData: data, EnvToken: "lnt_mine000000_s"}, "--server", addr, "get", "node", "n1")
		if diff := cmp.Diff([]string{"GetNode " + admin, "GetNode " + admin, "GetNode lnt_mine000000_s"}, f.seenCalls()); diff != "" {
			t.Errorf("server saw (-want +got):\n%s", diff)
		}
	})

	t.Run("tls", func(t *testing.T) {
		tlsData := t.TempDir()
		for name, b := range map[string]string{adminTokenFile: admin, caCertFile: pemOf(pki.ca)} {
			if err := os.WriteFile(filepath.Join(tlsData, name), []byte(b), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f := newFakeServer()
		addr := f.start(t, pki.serverCreds())
		for _, server := range []string{addr, strings.Replace(addr, "127.0.0.1", "localhost", 1)} {
			if got := runEnv(t.Context(), map[string]string{envLabdData: tlsData}, "--server", server, "get", "node", "n1"); got.code != 0 {
				t.Fatalf("%s: code %d, stderr %q", server, got.code, got.stderr)
			}
		}
		if diff := cmp.Diff([]string{"GetNode " + admin, "GetNode " + admin}, f.seenCalls()); diff != "" {
			t.Errorf("server saw (-want +got):\n%s", diff)
		}
	})

	t.Run("not_for_a_context", func(t *testing.T) {
		f := newFakeServer()
		addr := f.start(t)
		env := writeTestConfig(t, &Config{CurrentContext: "c", Contexts: []*ConfigContext{{Name: "c", Server: addr}}})
		env[envLabdData] = data
		if got := runEnv(t.Context(), env, "get", "node", "n1"); got.code != 0 {
			t.Fatalf("code %d, stderr %q", got.code, got.stderr)
		}
		if diff := cmp.Diff([]string{"GetNode"}, f.seenCalls()); diff != "" {
			t.Errorf("server saw (-want +got):\n%s", diff)
		}
	})
}

// TestPlaintextRefused: no token goes in plaintext to a server on another
// machine, and without a CA nothing is sent there at all. The addresses
// are never dialled (TEST-NET-1, RFC 5737).
func TestPlaintextRefused(t *testing.T) {
	const server = "192.0.2.1:7700"
	tokenRefusal := "error: refusing to send a token in plaintext to " + server + ": no CA is known for it; run labctl login --server " + server + " --ca-hash sha256:... --token ... (labctl user invite prints the line)\n"
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		stderr string
	}{
		{name: "flag_token", args: []string{"--server", server, "--token", "lnt_x_y", "get", "labs"}, stderr: tokenRefusal},
		{name: "env_token", env: map[string]string{EnvServer: server, EnvToken: "lnt_x_y"}, args: []string{"get", "labs"}, stderr: tokenRefusal},
		{name: "context_without_ca", env: writeTestConfig(t, &Config{CurrentContext: "c", Contexts: []*ConfigContext{{Name: "c", Server: server, Token: "lnt_x_y"}}}),
			args: []string{"whoami"}, stderr: tokenRefusal},
		{name: "no_token", args: []string{"--server", server, "get", "labs"},
			stderr: "error: no CA is known for " + server + ", and only a loopback labd speaks plaintext: run labctl login --server " + server + " --ca-hash sha256:... --token ... (labctl user invite prints the line)\n"},
		{name: "login_without_pin", args: []string{"login", "--server", server, "--token", "lnt_x_y"},
			stderr: "error: login to " + server + " needs --ca-hash sha256:... to check the server before the token is sent (labctl user invite prints it)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runEnv(t.Context(), tc.env, tc.args...)
			if got.code != 1 || got.stderr != tc.stderr || got.stdout != "" {
				t.Errorf("code %d, stdout %q, stderr:\n got %q\nwant %q", got.code, got.stdout, got.stderr, tc.stderr)
			}
		})
	}
	for _, s := range []string{"127.0.0.1:7700", "127.3.4.5:1", "[::1]:7700", "localhost:7700", "unix:/run/labd.sock"} {
		if !isLoopback(s) {
			t.Errorf("isLoopback(%q) = false", s)
		}
	}
	for _, s := range []string{"192.0.2.1:7700", "localhost.example:7700", "[::ffff:192.0.2.1]:1", "nonsense", "0.0.0.0:7700"} {
		if isLoopback(s) {
			t.Errorf("isLoopback(%q) = true", s)
		}
	}
}

// TestBearerNeverInPlaintext: the per-call credential itself refuses a
// connection without TLS unless it was allowed (loopback, no CA).
func TestBearerNeverInPlaintext(t *testing.T) {
	f := newFakeServer()
	addr := f.start(t)
	a := &app{stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }, timeout: time.Second}
	// A TLS-less transport with a credential that insists on TLS: what
	// gRPC does if labctl's own check were ever bypassed.
	creds, err := transportFor(endpoint{server: addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.dialServer(addr, creds, "lnt_leak000000_s", false); err == nil {
		defer a.close()
		if _, err := a.ac.WhoAmI(t.Context(), &labv1.WhoAmIRequest{}); err == nil {
			t.Fatal("WhoAmI over plaintext with a TLS-only credential succeeded")
		}
	}
	for _, c := range f.seenCalls() {
		if strings.Contains(c, "lnt_") {
			t.Errorf("the server saw the token: %q", c)
		}
	}
}

// TestTLSOnlyHint: labctl without a CA speaks plaintext to a loopback
// labd; one that serves TLS only (a student's labd on 0.0.0.0, before they
// log in) closes the connection, and labctl says what to do rather than
// "is labd running?".
func TestTLSOnlyHint(t *testing.T) {
	pki := newTestPKI(t)
	f := newFakeServer()
	addr := f.start(t, pki.serverCreds())
	got := runEnv(t.Context(), map[string]string{envLabdData: t.TempDir()}, "--server", addr, "get", "node", "n1")
	if got.code == 0 || !strings.Contains(got.stderr, "serves TLS only") || !strings.Contains(got.stderr, "labctl login") || strings.Count(got.stderr, "\n") != 1 {
		t.Fatalf("code %d, stderr %q; want one line saying the server serves TLS only and to log in", got.code, got.stderr)
	}
}
