package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	labv1 "github.com/labnet-dev/labnet/proto/lab/v1"
)

const (
	aliceSession = "lnt_alicesess1_secret"
	aliceInvite  = "lnt_aliceinvt1_secret"
)

// tlsFake is a fake labd serving TLS from a throwaway CA and asking for
// tokens.
func tlsFake(t *testing.T) (*fakeServer, *testPKI, string) {
	t.Helper()
	pki := newTestPKI(t)
	f := newFakeServer()
	f.requireAuth = true
	f.addUser("alice", labv1.Role_ROLE_STUDENT, aliceSession, labv1.TokenKind_TOKEN_KIND_SESSION)
	f.addUser("root", labv1.Role_ROLE_ADMIN, "lnt_rootroot00_secret", labv1.TokenKind_TOKEN_KIND_SESSION)
	return f, pki, f.start(t, pki.serverCreds())
}

func TestLoginPinned(t *testing.T) {
	f, pki, addr := tlsFake(t)
	env := writeTestConfig(t, nil)
	got := runEnv(t.Context(), env, "login", "--server", addr, "--ca-hash", strings.ToUpper(caHash(pki.ca)), "--token", aliceSession)
	if got.code != 0 || got.stderr != "" {
		t.Fatalf("login: code %d, stderr %q", got.code, got.stderr)
	}
	name := "alice@" + addr
	if want := "Logged in to " + addr + " as alice (student); context \"" + name + "\" is current.\n"; got.stdout != want {
		t.Errorf("stdout %q, want %q", got.stdout, want)
	}
	cfg := readTestConfig(t, env)
	want := &Config{CurrentContext: name, Contexts: []*ConfigContext{{Name: name, Server: addr, CA: pemOf(pki.ca), Token: aliceSession}}}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("saved config (-want +got):\n%s", diff)
	}
	// The context works: TLS against its CA, its token on every call,
	// streams included.
	for _, args := range [][]string{{"get", "labs"}, {"ping", "demo/h1", "10.0.2.10", "-c", "3"}} {
		if got := runEnv(t.Context(), env, args...); got.code != 0 {
			t.Errorf("labctl %s: code %d, stderr %q", strings.Join(args, " "), got.code, got.stderr)
		}
	}
	seen := f.seenCalls()
	if diff := cmp.Diff([]string{"WhoAmI " + aliceSession, "ListLabs " + aliceSession, "ListLabs " + aliceSession}, seen[:3]); diff != "" {
		t.Errorf("server saw (-want +got):\n%s", diff)
	}
	if last := seen[len(seen)-1]; last != "Ping "+aliceSession {
		t.Errorf("the stream carried %q, want Ping with the token", last)
	}

	// --context names it; a second login replaces a context of that name.
	got = runEnv(t.Context(), env, "login", "--server", strings.Replace(addr, "127.0.0.1", "localhost", 1), "--ca-hash", caHash(pki.ca), "--token", aliceSession, "--context", "class")
	if got.code != 0 {
		t.Fatalf("login --context: code %d, stderr %q", got.code, got.stderr)
	}
	if cfg := readTestConfig(t, env); cfg.CurrentContext != "class" || len(cfg.Contexts) != 2 {
		t.Errorf("config after the second login: %+v", cfg)
	}
}

func TestLoginWrongPin(t *testing.T) {
	f, pki, addr := tlsFake(t)
	other := newTestPKI(t)
	env := writeTestConfig(t, nil)
	got := runEnv(t.Context(), env, "login", "--server", addr, "--ca-hash", caHash(other.ca), "--token", aliceSession)
	want := "error: the server's CA " + caHash(pki.ca) + " does not match --ca-hash " + caHash(other.ca) + "\n"
	if got.code != 1 || got.stderr != want || got.stdout != "" {
		t.Errorf("code %d, stdout %q, stderr:\n got %q\nwant %q", got.code, got.stdout, got.stderr, want)
	}
	if seen := f.seenCalls(); len(seen) != 0 {
		t.Errorf("the server saw calls: %q", seen)
	}
	if cfg := readTestConfig(t, env); len(cfg.Contexts) != 0 {
		t.Errorf("a context was saved: %+v", cfg)
	}

	// A context whose CA is not the server's: the handshake fails, no call.
	env = writeTestConfig(t, &Config{CurrentContext: "c", Contexts: []*ConfigContext{{Name: "c", Server: addr, CA: pemOf(other.ca), Token: aliceSession}}})
	got = runEnv(t.Context(), env, "get", "labs")
	if prefix := "error: cannot verify labd at " + addr + ": tls: failed to verify certificate: x509: "; got.code != 1 || !strings.HasPrefix(got.stderr, prefix) || strings.Count(got.stderr, "\n") != 1 {
		t.Errorf("code %d, stderr %q, want one line starting %q", got.code, got.stderr, prefix)
	}
	if seen := f.seenCalls(); len(seen) != 0 {
		t.Errorf("the server saw calls: %q", seen)
	}

	for _, bad := range []string{"abc", "sha256:1234", "md5:" + strings.Repeat("0", 64)} {
		got := runEnv(t.Context(), env, "login", "--server", addr, "--ca-hash", bad, "--token", aliceSession)
		if want := "error: --ca-hash \"" + bad + "\": want sha256: and 64 hex digits, as labctl user invite prints\n"; got.code != 1 || got.stderr != want {
			t.Errorf("--ca-hash %s: code %d, stderr %q", bad, got.code, got.stderr)
		}
	}
}

func TestLoginInvite(t *testing.T) {
	f, pki, addr := tlsFake(t)
	f.addUser("alice", labv1.Role_ROLE_STUDENT, aliceInvite, labv1.TokenKind_TOKEN_KIND_INVITE)
	env := writeTestConfig(t, nil)
	got := runEnv(t.Context(), env, "login", "--server", addr, "--ca-hash", caHash(pki.ca), "--token", aliceInvite, "--ttl", "7d")
	if got.code != 0 {
		t.Fatalf("login: code %d, stderr %q", got.code, got.stderr)
	}
	cfg := readTestConfig(t, env)
	cx := cfg.Current()
	if cx == nil || cx.Token == aliceInvite || !strings.HasPrefix(cx.Token, "lnt_") {
		t.Fatalf("saved context %+v: want the session token Login made", cx)
	}
	if diff := cmp.Diff([]string{`Login alice ttl=168h0m0s "labctl login"`}, f.recorded()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// The invite is used up; the session token works.
	if got := runEnv(t.Context(), env, "whoami"); got.code != 0 || !strings.Contains(got.stdout, "Role:     student\n") {
		t.Errorf("whoami: code %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
	got = runEnv(t.Context(), env, "login", "--server", addr, "--ca-hash", caHash(pki.ca), "--token", aliceInvite)
	if want := "error: the token is unknown or revoked: run `labctl login` again\n"; got.code != 1 || got.stderr != want {
		t.Errorf("second use of the invite: code %d, stderr %q", got.code, got.stderr)
	}
}

func TestLogout(t *testing.T) {
	f, pki, addr := tlsFake(t)
	env := writeTestConfig(t, nil)
	if got := runEnv(t.Context(), env, "login", "--server", addr, "--ca-hash", caHash(pki.ca), "--token", aliceSession); got.code != 0 {
		t.Fatalf("login: %q", got.stderr)
	}
	env[EnvToken] = "lnt_other00000_s" // logout revokes the context's own token, not this
	got := runEnv(t.Context(), env, "logout")
	if want := "Logged out: token alicesess1 revoked; context \"alice@" + addr + "\" removed.\n"; got.code != 0 || got.stdout != want {
		t.Errorf("logout: code %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
	if diff := cmp.Diff([]string{"RevokeToken users/alice/tokens/alicesess1"}, f.recorded()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if cfg := readTestConfig(t, env); len(cfg.Contexts) != 0 || cfg.CurrentContext != "" {
		t.Errorf("config after logout: %+v", cfg)
	}
	if got := runEnv(t.Context(), env, "logout"); got.code != 1 || got.stderr != "error: not logged in: there is no current context\n" {
		t.Errorf("second logout: code %d, stderr %q", got.code, got.stderr)
	}
}

// TestAuthErrors: Unauthenticated and PermissionDenied print the server's
// message on one line and exit 1.
func TestAuthErrors(t *testing.T) {
	f, pki, addr := tlsFake(t)
	f.addUser("vic", labv1.Role_ROLE_VIEWER, "lnt_vicvicvic0_secret", labv1.TokenKind_TOKEN_KIND_SESSION)
	ctxFor := func(token string) map[string]string {
		env := writeTestConfig(t, &Config{CurrentContext: "c", Contexts: []*ConfigContext{{Name: "c", Server: addr, CA: pemOf(pki.ca), Token: token}}})
		return env
	}
	for _, tc := range []struct {
		name   string
		token  string
		args   []string
		stderr string
	}{
		{name: "no_token", args: []string{"get", "labs"},
			stderr: "error: this call needs a token: run `labctl login` (or set LABCTL_TOKEN)\n"},
		{name: "unknown_token", token: "lnt_nobody0000_secret", args: []string{"get", "hosts"},
			stderr: "error: the token is unknown or revoked: run `labctl login` again\n"},
		{name: "stream", args: []string{"ping", "demo/h1", "h2"},
			stderr: "error: this call needs a token: run `labctl login` (or set LABCTL_TOKEN)\n"},
		{name: "denied", token: "lnt_vicvicvic0_secret", args: []string{"delete", "lab", "demo"},
			stderr: "error: vic (viewer) may not delete labs/demo: viewers only read\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runEnv(t.Context(), ctxFor(tc.token), tc.args...)
			if got.code != 1 || got.stderr != tc.stderr {
				t.Errorf("code %d, stderr:\n got %q\nwant %q", got.code, got.stderr, tc.stderr)
			}
		})
	}
}

func TestCanI(t *testing.T) {
	f, pki, addr := tlsFake(t)
	env := writeTestConfig(t, &Config{CurrentContext: "c", Contexts: []*ConfigContext{{Name: "c", Server: addr, CA: pemOf(pki.ca), Token: aliceSession}}})
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr string
		call           string
	}{
		{args: []string{"delete", "lab/demo"}, stdout: "yes\n", call: "CanI delete labs/demo "},
		{args: []string{"delete", "lab/other"}, code: 1, stdout: "no - alice (student) may not delete labs/other: the lab is bob's\n", call: "CanI delete labs/other "},
		{args: []string{"update", "labs/other", "-q"}, code: 1, call: "CanI update labs/other "},
		{args: []string{"exec", "host/demo/h2", "--as", "bob"}, stdout: "yes\n", call: "CanI exec labs/demo/hosts/h2 users/bob"},
		{args: []string{"EXEC", "host/h1", "--lab", "other"}, stdout: "yes\n", call: "CanI exec labs/other/hosts/h1 "},
		{args: []string{"capture", "network/demo/lan1"}, stdout: "yes\n", call: "CanI capture labs/demo/networks/lan1 "},
		{args: []string{"create", "labs"}, stdout: "yes\n", call: "CanI create labs "},
		{args: []string{"update", "node/n1"}, stdout: "yes\n", call: "CanI update nodes/n1 "},
		{args: []string{"get", "user/bob"}, stdout: "yes\n", call: "CanI get users/bob "},
		{args: []string{"fly", "labs"}, code: 1, stderr: "error: unknown verb \"fly\" (want get, list, watch, create, update, delete, exec, capture, impair, transfer)\n"},
		{args: []string{"get", "pod/x"}, code: 1, stderr: "error: invalid resource \"pod/x\": unknown kind \"pod\" (want lab, host, network, node or user)\n"},
		{args: []string{"get"}, code: 1, stderr: "error: labctl auth can-i needs VERB RESOURCE (got 1 argument)\n"},
	} {
		before := len(f.recorded())
		got := runEnv(t.Context(), env, append([]string{"auth", "can-i"}, tc.args...)...)
		if got.code != tc.code || got.stdout != tc.stdout || got.stderr != tc.stderr {
			t.Errorf("can-i %s: code %d, stdout %q, stderr %q", strings.Join(tc.args, " "), got.code, got.stdout, got.stderr)
		}
		calls := f.recorded()[before:]
		var want []string
		if tc.call != "" {
			want = []string{tc.call}
		}
		if diff := cmp.Diff(want, calls, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("can-i %s: calls (-want +got):\n%s", strings.Join(tc.args, " "), diff)
		}
	}
}

func TestUsersAndTokens(t *testing.T) {
	f, pki, addr := tlsFake(t)
	f.inviteServer, f.inviteCAHash = "10.0.0.5:7700", caHash(pki.ca)
	env := writeTestConfig(t, &Config{CurrentContext: "c", Contexts: []*ConfigContext{{Name: "c", Server: addr, CA: pemOf(pki.ca), Token: "lnt_rootroot00_secret"}}})
	steps := []struct {
		args           []string
		code           int
		stdout, stderr string
		calls          []string
	}{
		{args: []string{"user", "add", "bob", "--role", "viewer"}, stdout: "user/bob created (viewer)\n", calls: []string{"CreateUser bob viewer"}},
		{args: []string{"user", "add", "carl", "--role", "teacher"}, code: 1, stderr: "error: unknown role \"teacher\" (want admin, student or viewer)\n"},
		{args: []string{"user", "add", "bob"}, code: 1, stderr: "error: user \"bob\" already exists\n", calls: []string{"CreateUser bob student"}},
		{args: []string{"user", "list"}, stdout: "NAME    ROLE      AGE\nalice   student   60m\nbob     viewer    60m\nroot    admin     60m\n"},
		// invite: creates a missing user, prints exactly one line.
		{args: []string{"user", "invite", "dave", "--ttl", "15m"},
			stdout: "labctl login --server 10.0.0.5:7700 --ca-hash " + caHash(pki.ca) + " --token lnt_tok0000001_" + strings.Repeat("0", 51) + "1\n",
			calls:  []string{"CreateUser dave student", `CreateToken users/dave invite ttl=15m0s "invite"`}},
		{args: []string{"user", "invite", "bob", "--role", "admin"},
			stdout: "labctl login --server 10.0.0.5:7700 --ca-hash " + caHash(pki.ca) + " --token lnt_tok0000002_" + strings.Repeat("0", 51) + "2\n",
			stderr: "note: user bob is already a viewer; --role admin is not applied\n",
			calls:  []string{`CreateToken users/bob invite ttl=1h0m0s "invite"`}},
		{args: []string{"token", "create", "--description", "ci", "--ttl", "2w"},
			stdout: "lnt_tok0000003_" + strings.Repeat("0", 51) + "3\n",
			stderr: "token tok0000003 of root, expires 2026-01-02T13:00:00Z; its secret is shown only now:\n",
			calls:  []string{`CreateToken users/root session ttl=336h0m0s "ci"`}},
		{args: []string{"token", "list", "--user", "bob"}, stdout: "ID           USER   KIND     DESCRIPTION   EXPIRES   AGE\n" +
			"tok0000002   bob    invite   invite        in 2d     120m\n"},
		{args: []string{"token", "revoke", "tok0000002"}, stdout: "token tok0000002 of bob revoked\n", calls: []string{"RevokeToken users/bob/tokens/tok0000002"}},
		{args: []string{"token", "revoke", "dave/tok0000001", "lnt_tok0000003_x"}, stdout: "token tok0000001 of dave revoked\ntoken tok0000003 of root revoked\n",
			calls: []string{"RevokeToken users/dave/tokens/tok0000001", "RevokeToken users/root/tokens/tok0000003"}},
		{args: []string{"token", "revoke", "nope"}, code: 1, stderr: "error: token \"nope\" not found\n"},
		{args: []string{"token", "list", "--all", "--user", "x"}, code: 1, stderr: "error: --user and --all cannot be used together\n"},
		{args: []string{"user", "delete", "bob", "nobody"}, code: 1, stdout: "user/bob deleted\n", stderr: "error: user \"users/nobody\" not found\n",
			calls: []string{"DeleteUser users/bob", "DeleteUser users/nobody"}},
	}
	for _, s := range steps {
		before := len(f.recorded())
		got := runEnv(t.Context(), env, s.args...)
		if got.code != s.code || got.stdout != s.stdout || got.stderr != s.stderr {
			t.Errorf("labctl %s: code %d\nstdout %q\nwant   %q\nstderr %q\nwant   %q", strings.Join(s.args, " "), got.code, got.stdout, s.stdout, got.stderr, s.stderr)
		}
		if diff := cmp.Diff(s.calls, f.recorded()[before:], cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("labctl %s: calls (-want +got):\n%s", strings.Join(s.args, " "), diff)
		}
	}
}

// TestLogoutUnknownToken: a token the server no longer accepts is no
// reason to keep the context; an unreachable server is.
func TestLogoutUnknownToken(t *testing.T) {
	_, pki, addr := tlsFake(t)
	env := writeTestConfig(t, &Config{CurrentContext: "c", Contexts: []*ConfigContext{
		{Name: "c", Server: addr, CA: pemOf(pki.ca), Token: "lnt_revoked000_secret"},
		{Name: "gone", Server: "127.0.0.1:1", Token: "lnt_gone000000_secret"},
	}})
	got := runEnv(t.Context(), env, "logout")
	if want := "Logged out: the server no longer accepts its token; context \"c\" removed.\n"; got.code != 0 || got.stdout != want {
		t.Errorf("logout: code %d, stdout %q, stderr %q", got.code, got.stdout, got.stderr)
	}
	got = runEnv(t.Context(), env, "logout", "--context", "gone")
	want := "error: context gone kept, its token not revoked (labctl config delete-context gone removes it anyway): cannot reach labd at 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused (is labd running?)\n"
	if got.code != 1 || got.stderr != want {
		t.Errorf("logout of an unreachable server: code %d, stderr:\n got %q\nwant %q", got.code, got.stderr, want)
	}
	if cfg := readTestConfig(t, env); len(cfg.Contexts) != 1 || cfg.Contexts[0].Name != "gone" {
		t.Errorf("config after logout: %+v", cfg)
	}
}
