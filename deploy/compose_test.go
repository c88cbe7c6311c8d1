package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	corev1 "k8s.io/api/core/v1"
)

// loadCompose loads compose.yaml as docker compose does (schema
// validation, interpolation, the env file), with labd.env made from
// labd.env.example as the README says, in a copy of deploy/ so that
// nothing is written here.
func loadCompose(t *testing.T) (*types.Project, string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "deploy")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{"compose.yaml": "compose.yaml", "labd.env.example": "labd.env"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir), cli.WithEnv([]string{}), cli.WithInterpolation(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p, root
}

// isInvite reports whether s is a one-shot labctl (an invite) rather
// than a labd node (the image's entrypoint).
func isInvite(s types.ServiceConfig) bool {
	return len(s.Entrypoint) > 0 && s.Entrypoint[0] == "labctl"
}

// serviceEnv is s's environment value for k ("" when unset).
func serviceEnv(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

// volumeAt is the named volume that holds path in s's container, and
// path's place in it.
func volumeAt(s types.ServiceConfig, path string) (v types.ServiceVolumeConfig, rel string, ok bool) {
	for _, vol := range s.Volumes {
		if vol.Type != "volume" || len(vol.Target) <= len(v.Target) {
			continue
		}
		if r, found := strings.CutPrefix(path, vol.Target); found && (r == "" || r[0] == '/') {
			v, rel, ok = vol, r, true
		}
	}
	return v, rel, ok
}

// TestCompose: the compose file's three labd join each other at the
// addresses they advertise, share no key, keep their data on volumes,
// build the image from the repository, and publish one API on the host's
// loopback; every node but the first enrols with an invite of its own
// (TestComposeInvites).
func TestCompose(t *testing.T) {
	p, root := loadCompose(t)
	var labds int
	for _, s := range p.Services {
		if !isInvite(s) {
			labds++
		}
	}
	if labds != 3 {
		t.Fatalf("%d labd services, want 3", labds)
	}
	_, gossipPort, _ := labdDefaultPorts(t)
	stages := parseDockerfile(t)
	imageData := imageEnv(stages[len(stages)-1])["LABD_DATA"]
	var advertised, published []string
	names := map[string]bool{}
	joins := map[string][]string{}
	for name, s := range p.Services {
		if s.Build == nil || s.Build.Context != root || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: build %+v, want the repository root with deploy/Dockerfile (the image is published nowhere)", name, s.Build)
		}
		if serviceEnv(s, "LABD_CLUSTER_KEY") != "" || serviceEnv(s, "LABD_CLUSTER_KEY_FILE") != "" {
			t.Errorf("%s: a cluster key shared by every node: nodes enrol with invites, and gossip keys come from the control plane", name)
		}
		if isInvite(s) {
			continue
		}
		env := func(k string) string { return serviceEnv(s, k) }
		if env("LABD_TLS") != "true" {
			t.Errorf("%s: LABD_TLS %q: the API serves TLS only", name, env("LABD_TLS"))
		}
		names[env("LABD_NAME")] = true
		ip := env("LABD_ADVERTISE")
		var netIP string
		for netName, n := range s.Networks {
			if n != nil {
				netIP = n.Ipv4Address
				subnet, err := netip.ParsePrefix(p.Networks[netName].Ipam.Config[0].Subnet)
				if err != nil || !subnet.Contains(netip.MustParseAddr(netIP)) {
					t.Errorf("%s: %s is not in network %s's subnet", name, netIP, netName)
				}
			}
		}
		if ip == "" || ip != netIP {
			t.Errorf("%s: advertises %q, its address is %q", name, ip, netIP)
		}
		advertised = append(advertised, net.JoinHostPort(ip, gossipPort))
		join := strings.Split(env("LABD_JOIN"), ",")
		slices.Sort(join)
		joins[name] = join
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Type == "volume" && v.Target == imageData }) {
			t.Errorf("%s: no volume at the image's data directory %s", name, imageData)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q: keep the API on the host's loopback (the README's login uses 127.0.0.1)", name, port.Published, port.HostIP)
			}
			published = append(published, name)
		}
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < 15*time.Second {
			t.Errorf("%s: stop_grace_period must cover labd's shutdown", name)
		}
	}
	slices.Sort(advertised)
	for name, join := range joins {
		if !slices.Equal(join, advertised) {
			t.Errorf("%s joins %v; the nodes advertise %v", name, join, advertised)
		}
	}
	if len(names) != 3 {
		t.Errorf("node names %v: want three distinct", names)
	}
	if len(published) != 1 {
		t.Errorf("services publishing the API: %v, want one", published)
	}
}

// TestComposeInvites: the node that forms the control plane (the CA
// holder) needs no invite and is healthy only once its first admin exists;
// every other node reads its enrolment token from its data volume, written
// there by an invite service it waits for, which invites exactly that node
// (as a control node when it is one) as labd-1's admin: with the token and
// CA on labd-1's volume, read-only, against labd-1's advertised API.
func TestComposeInvites(t *testing.T) {
	p, _ := loadCompose(t)
	api, _, _ := labdDefaultPorts(t)
	stages := parseDockerfile(t)
	imageData := imageEnv(stages[len(stages)-1])["LABD_DATA"]
	var bootstrap string
	for _, s := range p.Services {
		if b := serviceEnv(s, "LABD_BOOTSTRAP"); b != "" {
			bootstrap = b
		}
	}
	first, ok := p.Services[bootstrap]
	if !ok || serviceEnv(first, "LABD_NAME") != bootstrap {
		t.Fatalf("LABD_BOOTSTRAP %q is not a service named for its node", bootstrap)
	}
	if serviceEnv(first, "LABD_ENROLL_FILE") != "" || serviceEnv(first, "LABD_ENROLL") != "" {
		t.Errorf("%s enrols: it forms the control plane and the CA", bootstrap)
	}
	if hc := first.HealthCheck; hc == nil || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != "labctl" || hc.Test[len(hc.Test)-1] != "whoami" {
		t.Errorf("%s: health check %+v: want labctl ... whoami, so that it is healthy once its first admin exists (the invites need it)", bootstrap, first.HealthCheck)
	}
	firstData, _, ok := volumeAt(first, imageData)
	if !ok {
		t.Fatalf("%s: no volume at %s", bootstrap, imageData)
	}
	invited := map[string]bool{}
	for name, s := range p.Services {
		if isInvite(s) || name == bootstrap {
			continue
		}
		node := serviceEnv(s, "LABD_NAME")
		file := serviceEnv(s, "LABD_ENROLL_FILE")
		fileVol, fileRel, ok := volumeAt(s, file)
		if data, _, _ := volumeAt(s, imageData); !ok || fileVol.Source != data.Source {
			t.Errorf("%s: LABD_ENROLL_FILE %q is not on its data volume", name, file)
			continue
		}
		var inv string
		for dep, d := range s.DependsOn {
			if isInvite(p.Services[dep]) && d.Condition == types.ServiceConditionCompletedSuccessfully {
				inv = dep
			}
		}
		if inv == "" {
			t.Errorf("%s: waits for no invite service to complete", name)
			continue
		}
		invited[inv] = true
		is := p.Services[inv]
		cmd := []string(is.Command)
		if len(cmd) < 3 || cmd[0] != "node" || cmd[1] != "invite" || cmd[2] != node {
			t.Errorf("%s: command %q: want node invite %s", inv, cmd, node)
		}
		if control := slices.Contains(cmd, "--control"); control != (serviceEnv(s, "LABD_CONTROL") == "true") {
			t.Errorf("%s: --control %v, but %s has LABD_CONTROL=%q", inv, control, name, serviceEnv(s, "LABD_CONTROL"))
		}
		i := slices.Index(cmd, "--token-file")
		if i < 0 || i+1 >= len(cmd) {
			t.Errorf("%s: no --token-file", inv)
			continue
		}
		if v, rel, ok := volumeAt(is, cmd[i+1]); !ok || v.Source != fileVol.Source || rel != fileRel || v.ReadOnly {
			t.Errorf("%s writes %s, not where %s reads its token (%s on volume %s)", inv, cmd[i+1], name, file, fileVol.Source)
		}
		if d, ok := is.DependsOn[bootstrap]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: must wait for %s to be healthy", inv, bootstrap)
		}
		if v, rel, ok := volumeAt(is, serviceEnv(is, "LABD_DATA")); !ok || v.Source != firstData.Source || rel != "" || !v.ReadOnly {
			t.Errorf("%s: LABD_DATA %q: want %s's data volume, read-only (its admin token and CA)", inv, serviceEnv(is, "LABD_DATA"), bootstrap)
		}
		if want := net.JoinHostPort(serviceEnv(first, "LABD_ADVERTISE"), api); serviceEnv(is, "LABCTL_SERVER") != want {
			t.Errorf("%s: LABCTL_SERVER %q, want %s's API %s", inv, serviceEnv(is, "LABCTL_SERVER"), bootstrap, want)
		}
		if is.Restart != "no" && is.Restart != "" {
			t.Errorf("%s: restart %q: a one-shot invite", inv, is.Restart)
		}
	}
	for name, s := range p.Services {
		if isInvite(s) && !invited[name] {
			t.Errorf("%s: an invite no node waits for", name)
		}
	}
	if len(invited) != len(p.Services)-len(invited)-1 {
		t.Errorf("%d invites for %d nodes besides %s", len(invited), len(p.Services)-len(invited)-1, bootstrap)
	}
}

// TestComposeNodesFormACluster runs the compose file's services as
// processes with the image's entrypoint (or the service's) and environment
// overlaid with each service's, started as depends_on orders them (healthy
// by the service's health check, else the image's HEALTHCHECK command;
// one-shot invites run to completion), and checks they form one cluster, as
// labctl on the host sees it after the README's login (an invite made in
// the first container, the printed line run with the published API as
// --server), every node after the first enrolled with its own invite.
// Substituted: the compose network's addresses by loopback ones, the
// container's own 0.0.0.0 and 127.0.0.1 by its address, each named volume
// by a directory (shared by the services that mount it).
func TestComposeNodesFormACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts labd processes")
	}
	p, _ := loadCompose(t)
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	image := imageEnv(final)
	imageHealth := commands[*instructions.HealthCheckCommand](final)[0].Health.Test[1:]
	ep := imageEntrypoint(t)
	if ep[0] != "labd" || imageHealth[0] != "labctl" {
		t.Fatalf("entrypoint %q, health check %q", ep, imageHealth)
	}
	var ports []corev1.ContainerPort
	for _, e := range commands[*instructions.ExposeCommand](final) {
		for _, pp := range e.Ports {
			port, proto, _ := strings.Cut(pp, "/")
			var n int32
			fmt.Sscan(port, &n)
			ports = append(ports, corev1.ContainerPort{ContainerPort: n, Protocol: corev1.Protocol(strings.ToUpper(proto))})
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	})
	loop := freeLoopbackIPs(t, len(names), ports)
	addr := map[string]string{} // compose address -> loopback address
	for i, n := range names {
		for _, nc := range p.Services[n].Networks {
			if nc != nil && nc.Ipv4Address != "" {
				addr[nc.Ipv4Address] = loop[i]
			}
		}
	}
	volumes := map[string]string{} // named volume -> directory
	// subst replaces in one value (an environment variable's, an
	// argument) what this test stands in for.
	subst := func(i int, s types.ServiceConfig, v string) string {
		var parts []string
		for _, part := range strings.Split(v, ",") {
			if h, port, err := net.SplitHostPort(part); err == nil {
				if a, ok := addr[h]; ok {
					h = a
				} else if h == "0.0.0.0" || h == "127.0.0.1" {
					h = loop[i]
				}
				part = net.JoinHostPort(h, port)
			} else if a, ok := addr[part]; ok {
				part = a
			}
			parts = append(parts, part)
		}
		v = strings.Join(parts, ",")
		if vol, rel, ok := volumeAt(s, v); ok {
			if volumes[vol.Source] == "" {
				volumes[vol.Source] = t.TempDir()
			}
			v = volumes[vol.Source] + rel
		}
		return v
	}
	envOf := func(i int, name string) []string {
		s := p.Services[name]
		merged := map[string]string{}
		for k, v := range image {
			merged[k] = v
		}
		for k, v := range s.Environment {
			if v != nil {
				merged[k] = *v
			}
		}
		var env []string
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range merged {
				if !yield(k) {
					return
				}
			}
		}) {
			env = append(env, k+"="+subst(i, s, merged[k]))
		}
		return env
	}
	argvOf := func(i int, name string) []string {
		s := p.Services[name]
		argv := []string{binary(t, "labd")}
		if isInvite(s) {
			argv = []string{binary(t, "labctl")}
		} else if len(s.Entrypoint) > 0 {
			t.Fatalf("%s: entrypoint %q", name, s.Entrypoint)
		}
		for _, a := range s.Command {
			argv = append(argv, subst(i, s, a))
		}
		return argv
	}

	ps := newPodSet(t)
	pods := map[string]*pod{}
	healthy := func(name string, env []string) func() error {
		test := imageHealth
		if hc := p.Services[name].HealthCheck; hc != nil && len(hc.Test) > 1 {
			if hc.Test[0] != "CMD" || hc.Test[1] != "labctl" {
				t.Fatalf("%s: health check %q: this test runs labctl", name, hc.Test)
			}
			test = hc.Test[1:]
		}
		return func() error {
			cmd := exec.Command(binary(t, "labctl"), test[1:]...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
	}
	envs := make([][]string, len(names))
	for i, n := range names {
		envs[i] = envOf(i, n)
	}
	// As depends_on orders them: a service starts once every service it
	// depends on is healthy (a labd) or has completed successfully (an
	// invite, run to its end here).
	ready := map[string]bool{}
	for len(ready) < len(names) {
		progress := false
		for i, n := range names {
			s := p.Services[n]
			if ready[n] || pods[n] != nil {
				continue
			}
			waiting := false
			for dep, d := range s.DependsOn {
				want := types.ServiceConditionHealthy
				if isInvite(p.Services[dep]) {
					want = types.ServiceConditionCompletedSuccessfully
				}
				if d.Condition != want {
					t.Fatalf("%s depends on %s (%s): this test starts it once %s is %s", n, dep, d.Condition, dep, want)
				}
				waiting = waiting || !ready[dep]
			}
			if waiting {
				continue
			}
			progress = true
			argv := argvOf(i, n)
			if isInvite(s) {
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Env = envs[i]
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s (%s): %v: %s", n, strings.Join(argv[1:], " "), err, out)
				}
				t.Logf("%s: %s", n, out)
				ready[n] = true
				continue
			}
			pods[n] = ps.start(n, loop[i], argv, envs[i])
			waitFor(t, pods[n], "is healthy", healthy(n, envs[i]))
			ready[n] = true
		}
		if !progress {
			t.Fatalf("depends_on: a cycle among %v", names)
		}
	}
	// The README's login: labctl user invite in the service that
	// publishes the API (docker compose exec, the container's environment),
	// then the printed line on the host with --server its published API.
	publisher := -1
	for i, n := range names {
		if len(p.Services[n].Ports) > 0 {
			publisher = i
		}
	}
	if publisher < 0 {
		t.Fatal("no service publishes the API")
	}
	// The first admin is made once the control plane has a leader, a
	// moment after the image's health check passes (the compose file's
	// waits for it).
	var line []string
	waitFor(t, pods[names[publisher]], "invites the admin", func() error {
		invite := exec.Command(binary(t, "labctl"), "user", "invite", "admin")
		invite.Env = envs[publisher]
		var stderr bytes.Buffer
		invite.Stderr = &stderr
		out, err := invite.Output()
		line = strings.Fields(string(out))
		if err != nil || len(line) < 2 || line[0] != "labctl" || line[1] != "login" || !strings.Contains(string(out), "--ca-hash sha256:") {
			return fmt.Errorf("labctl user invite admin: %v: %q %s", err, out, stderr.Bytes())
		}
		return nil
	})
	published := net.JoinHostPort(loop[publisher], fmt.Sprint(p.Services[names[publisher]].Ports[0].Target))
	host := []string{"XDG_CONFIG_HOME=" + t.TempDir()} // the host's labctl: no LABD_DATA, no LABCTL_SERVER
	login := exec.Command(binary(t, "labctl"), append(line[1:], "--server", published)...)
	login.Env = host
	if out, err := login.CombinedOutput(); err != nil {
		t.Fatalf("%s --server %s: %v: %s", strings.Join(line, " "), published, err, out)
	}
	for name, pd := range pods {
		waitFor(t, pd, "sees every node alive", func() error {
			// From the host, with the login's context, to each node's API
			// (as a container's labctl reaches it: LABCTL_SERVER).
			api := envValue(envs[slices.Index(names, name)], "LABCTL_SERVER")
			cmd := exec.Command(binary(t, "labctl"), "--server", api, "get", "nodes")
			cmd.Env = host
			out, err := cmd.Output()
			if err != nil {
				return err
			}
			if n := strings.Count(string(out), " alive "); n != len(pods) {
				return fmt.Errorf("%d alive:\n%s", n, out)
			}
			return nil
		})
	}
	// Every node but the first enrolled with its own invite, as the kind
	// its invite says; nobody holds a cluster key.
	for name, pd := range pods {
		s := p.Services[name]
		log, _ := os.ReadFile(pd.logPath)
		enrolled := strings.Contains(string(log), `msg="enrolled with an invite`)
		if want := serviceEnv(s, "LABD_ENROLL_FILE") != ""; enrolled != want {
			t.Errorf("%s: enrolled with an invite: %v, want %v", name, enrolled, want)
		}
	}
	// Each node's kind, from its identity record: the first node records
	// its own a moment after it leads.
	waitFor(t, pods[names[publisher]], "lists every node's kind", func() error {
		cmd := exec.Command(binary(t, "labctl"), "get", "nodes", "-o", "json")
		cmd.Env = host
		out, err := cmd.Output()
		if err != nil {
			return err
		}
		var list struct{ Items []struct{ Name, Kind string } }
		if err := json.Unmarshal(out, &list); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if len(list.Items) != len(pods) {
			return fmt.Errorf("%d nodes listed, want %d: %s", len(list.Items), len(pods), out)
		}
		for _, n := range list.Items {
			s := p.Services[strings.TrimPrefix(n.Name, "nodes/")]
			if want := map[bool]string{true: "control", false: "member"}[serviceEnv(s, "LABD_CONTROL") == "true"]; n.Kind != want {
				return fmt.Errorf("%s: kind %q, want %q", n.Name, n.Kind, want)
			}
		}
		return nil
	})
}

// envValue is key's value in env (KEY=value entries).
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
