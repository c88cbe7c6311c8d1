package deploy

import (
	"bytes"
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

// TestCompose: the compose file's three labd join each other at the
// addresses they advertise, share the env file's key, keep their data on
// volumes, build the image from the repository, and publish one API on the
// host's loopback.
func TestCompose(t *testing.T) {
	p, root := loadCompose(t)
	if len(p.Services) != 3 {
		t.Fatalf("%d services, want 3 labd", len(p.Services))
	}
	_, gossipPort, _ := labdDefaultPorts(t)
	stages := parseDockerfile(t)
	imageData := imageEnv(stages[len(stages)-1])["LABD_DATA"]
	var advertised, published []string
	names := map[string]bool{}
	joins := map[string][]string{}
	for name, s := range p.Services {
		env := func(k string) string {
			if v := s.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		if s.Build == nil || s.Build.Context != root || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: build %+v, want the repository root with deploy/Dockerfile", name, s.Build)
		}
		if env("LABD_CLUSTER_KEY") == "" {
			t.Errorf("%s: no cluster key from the env file", name)
		}
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

// TestComposeNodesFormACluster runs the compose file's services as labd
// processes with the image's entrypoint and environment overlaid with each
// service's, started as depends_on orders them (healthy by the image's
// HEALTHCHECK command), and checks they form one cluster, as labctl on the
// host sees it after the README's login (an invite made in the first
// container, the printed line run with the published API as --server).
// Substituted: the compose network's addresses by loopback ones, the
// container's own 0.0.0.0 and 127.0.0.1 by its address, the data volume
// by a directory.
func TestComposeNodesFormACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts labd processes")
	}
	p, _ := loadCompose(t)
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	image := imageEnv(final)
	health := commands[*instructions.HealthCheckCommand](final)[0].Health.Test[1:]
	ep := imageEntrypoint(t)
	if ep[0] != "labd" || health[0] != "labctl" {
		t.Fatalf("entrypoint %q, health check %q", ep, health)
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
			addr[nc.Ipv4Address] = loop[i]
		}
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
			v := merged[k]
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
			if slices.ContainsFunc(s.Volumes, func(vol types.ServiceVolumeConfig) bool { return vol.Target == v }) {
				v = t.TempDir()
			}
			env = append(env, k+"="+v)
		}
		return env
	}

	ps := newPodSet(t)
	var pods []*pod
	healthy := func(env []string) func() error {
		return func() error {
			cmd := exec.Command(binary(t, "labctl"), health[1:]...)
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
	// Services without depends_on first, then the others once those are
	// healthy.
	for _, first := range []bool{true, false} {
		var started []int
		for i, n := range names {
			if (len(p.Services[n].DependsOn) == 0) != first {
				continue
			}
			for dep, d := range p.Services[n].DependsOn {
				if d.Condition != types.ServiceConditionHealthy || len(p.Services[dep].DependsOn) != 0 {
					t.Fatalf("%s depends on %s (%s): this test starts dependents once the others are healthy", n, dep, d.Condition)
				}
			}
			pods = append(pods, ps.start(n, loop[i], []string{binary(t, "labd")}, envs[i]))
			started = append(started, i)
		}
		for k, i := range started {
			waitFor(t, pods[len(pods)-len(started)+k], "is healthy", healthy(envs[i]))
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
	// moment after labd-1 is healthy.
	var line []string
	waitFor(t, pods[publisher], "invites the admin", func() error {
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
	for _, pd := range pods {
		waitFor(t, pd, "sees every node alive", func() error {
			// From the host, with the login's context, to each node's API
			// (as a container's labctl reaches it: LABCTL_SERVER).
			api := envValue(envs[slices.Index(names, pd.name)], "LABCTL_SERVER")
			cmd := exec.Command(binary(t, "labctl"), "--server", api, "get", "nodes")
			cmd.Env = host
			out, err := cmd.Output()
			if err != nil {
				return err
			}
			if n := strings.Count(string(out), " alive "); n != len(names) {
				return fmt.Errorf("%d alive:\n%s", n, out)
			}
			return nil
		})
	}
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
