package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// testNamespace is the namespace the pods are taken to run in.
const testNamespace = "labnet-test"

// pod is one labd process started as a pod of the StatefulSet.
type pod struct {
	name, ip string
	cmd      *exec.Cmd
	exited   chan struct{}
	err      error // Wait's, after exited is closed
	logPath  string
}

// TestStatefulSetPodsFormACluster starts labd processes with exactly the
// command, arguments and environment the built StatefulSet gives its pods,
// in the order it starts them, and checks that they form one cluster,
// carry packets between hosts on different pods, that scaling down
// (SIGTERM to the highest ordinal) leaves the cluster cleanly within the
// pod's termination grace period, and that scaling up again brings that pod
// back, with its volume at a new IP, running its host.
//
// What a kubelet and the cluster's DNS would provide is substituted, and
// nothing else: the downward API (pod name labd-N, a loopback address as
// the pod IP, the namespace), volumes (a temporary directory per pod for
// the data claim, the generated Secret's files for the secrets volume), the
// headless Service's DNS name in LABD_JOIN (the addresses of the pods that
// exist so far: publishNotReadyAddresses lists them before they are
// ready), and 0.0.0.0 and 127.0.0.1 (each pod has its own network
// namespace; here the pods share loopback, so a pod's "all addresses" and
// its loopback are its own address).
//
// labctl outside the cluster does what deploy/README.md says: it logs in
// to a pod with the CA's hash and the first admin's token from the files
// the Secrets are made of, and calls every pod over TLS with that context.
func TestStatefulSetPodsFormACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts labd processes")
	}
	m := buildBase(t)
	sts := m.sts
	c := sts.Spec.Template.Spec.Containers[0]
	labctl := binary(t, "labctl")
	argv := podArgv(t, c)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	replicas := int(*sts.Spec.Replicas)
	if replicas < 3 {
		t.Fatalf("replicas %d: a cluster that survives one node away needs 3", replicas)
	}
	// One address more: a pod that comes back usually has a new IP.
	ips := freeLoopbackIPs(t, replicas+1, c.Ports)
	apiAt := func(ip string) string { return net.JoinHostPort(ip, fmt.Sprint(ports["api"])) }
	apiOf := func(i int) string { return apiAt(ips[i]) }
	config := t.TempDir() // labctl's config directory (XDG_CONFIG_HOME)
	run := func(ip, stdin string, args ...string) (string, error) {
		cmd := exec.Command(labctl, append([]string{"--server", apiAt(ip)}, args...)...)
		cmd.Env = []string{"XDG_CONFIG_HOME=" + config}
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("labctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return string(out), err
	}

	ps := newPodSet(t)
	var pods []*pod
	claims := map[string]string{} // persistent volume claim (data-labd-N): directory
	// OrderedReady: each pod is started once the one before it is ready
	// (its readiness probe, labctl health in the pod, answers SERVING).
	for i := range replicas {
		name := fmt.Sprintf("%s-%d", sts.Name, i)
		env := podEnv(t, m, name, ips[i], ips[:i+1], claims)
		if i == 0 {
			t.Logf("pod environment (%s): %s", name, strings.Join(env, " "))
		}
		p := ps.start(name, ips[i], argv, env)
		pods = append(pods, p)
		waitFor(t, p, "is ready", probe(t, c.ReadinessProbe, env))
		if i == 0 {
			// From outside: the README's labctl login, with the CA's hash
			// and the admin token the Secret holds (the first admin is
			// made once the control plane has a leader).
			waitFor(t, p, "accepts the first admin's token", func() error {
				_, err := run(ips[0], "", "login", "--ca-hash", caHash(t, m.files["ca.crt"]), "--token", strings.TrimSpace(string(m.files["admin.token"])))
				return err
			})
		}
	}
	// Without the context, the API answers nothing but health: it serves
	// TLS only, and every other call needs a token.
	for _, args := range [][]string{{"health"}, {"get", "nodes"}} {
		cmd := exec.Command(labctl, append([]string{"--server", apiOf(0), "--timeout", "2s"}, args...)...)
		cmd.Env = []string{}
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("labctl %s with no credential and no CA: %s", strings.Join(args, " "), out)
		}
	}

	// Every pod sees every other alive, at its pod IP.
	type node struct {
		Name, State                               string
		APIAddress, GossipAddress, OverlayAddress string
	}
	for i, p := range pods {
		waitFor(t, p, "sees the whole cluster", func() error {
			out, err := run(ips[i], "", "get", "nodes", "-o", "json")
			if err != nil {
				return err
			}
			var list struct{ Items []node }
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				return err
			}
			var got []string
			for _, n := range list.Items {
				j := slices.IndexFunc(pods, func(q *pod) bool { return "nodes/"+q.name == n.Name })
				if j < 0 || n.State != "NODE_STATE_ALIVE" {
					return fmt.Errorf("node %s %s", n.Name, n.State)
				}
				want := node{Name: n.Name, State: n.State,
					APIAddress:     apiOf(j),
					GossipAddress:  net.JoinHostPort(ips[j], fmt.Sprint(ports["gossip"])),
					OverlayAddress: net.JoinHostPort(ips[j], fmt.Sprint(ports["overlay"]))}
				if n != want {
					t.Fatalf("%s sees %+v, want %+v", p.name, n, want)
				}
				got = append(got, n.Name)
			}
			if len(got) != replicas {
				return fmt.Errorf("sees %v", got)
			}
			return nil
		})
	}

	// Hosts on three pods: a ping from h1 to h2 crosses r1, so the overlay
	// carries it from pod 0 to 1 and from 1 to 2.
	topo := fmt.Sprintf(`name: k8s
networks:
  - {name: lan1, ipv4: 10.0.1.0/24}
  - {name: lan2, ipv4: 10.0.2.0/24}
hosts:
  - name: h1
    node: %s
    interfaces: [{network: lan1, ipv4: 10.0.1.10/24}]
    gateway: 10.0.1.1
  - name: r1
    node: %s
    forwarding: true
    interfaces: [{network: lan1, ipv4: 10.0.1.1/24}, {network: lan2, ipv4: 10.0.2.1/24}]
  - name: h2
    node: %s
    interfaces: [{network: lan2, ipv4: 10.0.2.10/24}]
    gateway: 10.0.2.1
`, pods[0].name, pods[1].name, pods[2].name)
	if _, err := run(ips[0], topo, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	ping := func() error {
		_, err := run(ips[1], "", "ping", "k8s/h1", "10.0.2.10", "-c", "1", "-W", "1")
		return err
	}
	waitFor(t, pods[2], "answers a ping from h1 on "+pods[0].name, ping)

	// Scaling down stops the highest ordinal with SIGTERM; the kubelet
	// kills it after the grace period.
	last := pods[len(pods)-1]
	grace := time.Duration(*sts.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if err := last.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-last.exited:
		if last.err != nil {
			t.Fatalf("%s after SIGTERM: %v", last.name, last.err)
		}
	case <-time.After(grace):
		t.Fatalf("%s still running %s after SIGTERM: the kubelet would kill it", last.name, grace)
	}
	waitFor(t, pods[0], "sees "+last.name+" leave", func() error {
		out, err := run(ips[0], "", "get", "nodes", "-o", "json")
		if err != nil {
			return err
		}
		if !strings.Contains(out, `"NODE_STATE_LEFT"`) {
			return errors.New(out)
		}
		return nil
	})

	// Scaling up again: the pod comes back with the same name and volume
	// (the claim outlives the pod) at a new IP, rejoins, and runs its host
	// again.
	newIP := ips[replicas]
	peers := append(slices.Clone(ips[:replicas-1]), newIP)
	backEnv := podEnv(t, m, last.name, newIP, peers, claims)
	back := ps.start(last.name, newIP, argv, backEnv)
	waitFor(t, back, "is ready again", probe(t, c.ReadinessProbe, backEnv))
	waitFor(t, back, "answers a ping from h1 again, at its new address", ping)
}

// probe runs an exec probe's command in a pod with environment env, as
// the kubelet does in the container.
func probe(t *testing.T, p *corev1.Probe, env []string) func() error {
	t.Helper()
	if p == nil || p.Exec == nil || len(p.Exec.Command) == 0 || p.Exec.Command[0] != "labctl" {
		t.Fatalf("probe %+v: this test runs exec probes of labctl", p)
	}
	return func() error {
		cmd := exec.Command(binary(t, "labctl"), p.Exec.Command[1:]...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(p.Exec.Command, " "), err, out)
		}
		return nil
	}
}

// podArgv is what the container runs: the image's entrypoint (the
// Dockerfile's, as the container sets no command) and the container's
// arguments.
func podArgv(t *testing.T, c corev1.Container) []string {
	t.Helper()
	if len(c.Command) > 0 || len(c.Args) > 0 {
		t.Fatalf("the container sets command %q and args %q: this test runs the image's entrypoint with the environment only", c.Command, c.Args)
	}
	ep := imageEntrypoint(t)
	if len(ep) != 1 || ep[0] != "labd" {
		t.Fatalf("the image's entrypoint is %q, want [labd]", ep)
	}
	return []string{binary(t, "labd")}
}

// podEnv is the environment the kubelet gives pod name (IP ip), with the
// headless Service resolving to peers. claims maps a persistent volume
// claim to its directory, made on first use, so a pod that comes back
// finds its data.
func podEnv(t *testing.T, m *manifests, name, ip string, peers []string, claims map[string]string) []string {
	t.Helper()
	spec := m.sts.Spec.Template.Spec
	c := spec.Containers[0]
	// Volumes: mount path -> local directory.
	dirs := map[string]string{}
	for _, vm := range c.VolumeMounts {
		dir := t.TempDir()
		dirs[vm.MountPath] = dir
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		isClaim := slices.ContainsFunc(m.sts.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == vm.Name })
		switch {
		case isClaim:
			claim := vm.Name + "-" + name // as the StatefulSet names it
			if claims[claim] == "" {
				claims[claim] = dir
			}
			dirs[vm.MountPath] = claims[claim]
		case i >= 0 && len(secretSources(spec.Volumes[i])) > 0:
			for _, src := range secretSources(spec.Volumes[i]) {
				secret := m.secrets[src.name]
				if secret == nil {
					t.Fatalf("volume %s: Secret %s is not one the base generates", vm.Name, src.name)
				}
				for _, it := range src.items {
					if err := os.WriteFile(filepath.Join(dir, it.Path), secret.Data[it.Key], 0o440); err != nil {
						t.Fatal(err)
					}
				}
			}
		default:
			t.Fatalf("volume mount %s: not a claim template or a generated Secret", vm.Name)
		}
	}
	peersSvc := m.sts.Spec.ServiceName
	svcNames := []string{peersSvc, peersSvc + "." + testNamespace, peersSvc + "." + testNamespace + ".svc", peersSvc + "." + testNamespace + ".svc.cluster.local"}

	vars := map[string]string{}
	var env []string
	for _, e := range c.Env {
		v := expand(e.Value, vars)
		if e.ValueFrom != nil {
			f := e.ValueFrom.FieldRef
			if f == nil {
				t.Fatalf("env %s: only fieldRef is substituted here", e.Name)
			}
			v = map[string]string{"metadata.name": name, "metadata.namespace": testNamespace, "status.podIP": ip}[f.FieldPath]
			if v == "" {
				t.Fatalf("env %s: fieldRef %s is not substituted here", e.Name, f.FieldPath)
			}
		}
		vars[e.Name] = v // what $(NAME) in later entries expands to
		for mp, dir := range dirs {
			if v == mp || strings.HasPrefix(v, mp+"/") {
				v = dir + strings.TrimPrefix(v, mp)
			}
		}
		if h, p, err := net.SplitHostPort(v); err == nil && (h == "0.0.0.0" || h == "127.0.0.1") {
			v = net.JoinHostPort(ip, p)
		}
		if e.Name == "LABD_JOIN" {
			var join []string
			for _, a := range strings.Split(v, ",") {
				h, p, err := net.SplitHostPort(a)
				if err != nil || !slices.Contains(svcNames, h) {
					t.Fatalf("LABD_JOIN %q: want the headless Service %s", v, peersSvc)
				}
				for _, peer := range peers {
					join = append(join, net.JoinHostPort(peer, p))
				}
			}
			v = strings.Join(join, ",")
		}
		env = append(env, e.Name+"="+v)
	}
	return env
}

var kubeVar = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand does Kubernetes' $(VAR) expansion of env values: a variable
// defined earlier is replaced, $$ is a literal $, anything else stays.
func expand(s string, vars map[string]string) string {
	return kubeVar.ReplaceAllStringFunc(s, func(ref string) string {
		if ref == "$$" {
			return "$"
		}
		if v, ok := vars[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

// freeLoopbackIPs picks n addresses 127.X.Y.1..n on which every container
// port is free, so the fixed ports of the manifests clash with nothing.
func freeLoopbackIPs(t *testing.T, n int, ports []corev1.ContainerPort) []string {
	t.Helper()
	for range 20 {
		base := fmt.Sprintf("127.%d.%d.", 1+rand.IntN(254), rand.IntN(256))
		var ips []string
		free := true
		for i := 1; i <= n && free; i++ {
			ip := base + fmt.Sprint(i)
			ips = append(ips, ip)
			for _, p := range ports {
				addr := net.JoinHostPort(ip, fmt.Sprint(p.ContainerPort))
				var err error
				if p.Protocol == corev1.ProtocolUDP {
					var c net.PacketConn
					if c, err = net.ListenPacket("udp", addr); err == nil {
						c.Close()
					}
				} else {
					var l net.Listener
					if l, err = net.Listen("tcp", addr); err == nil {
						l.Close()
					}
				}
				if err != nil {
					free = false
					break
				}
			}
		}
		if free {
			return ips
		}
	}
	t.Fatal("no free loopback addresses for the pods' ports")
	return nil
}

// podSet starts labd processes and, when the test ends, stops them and
// shows their logs if it failed.
type podSet struct {
	t      *testing.T
	logDir string
	pods   []*pod
}

func newPodSet(t *testing.T) *podSet {
	ps := &podSet{t: t, logDir: t.TempDir()} // removed after the cleanup below
	t.Cleanup(func() {
		for _, p := range ps.pods {
			p.stop()
		}
		if t.Failed() {
			for _, p := range ps.pods {
				b, _ := os.ReadFile(p.logPath)
				t.Logf("%s's log:\n%s", p.name, b)
			}
		}
	})
	return ps
}

// start runs argv with exactly env as the pod (or container) name.
func (ps *podSet) start(name, ip string, argv, env []string) *pod {
	t := ps.t
	t.Helper()
	p := &pod{name: name, ip: ip, exited: make(chan struct{}), logPath: filepath.Join(ps.logDir, name+".log")}
	log, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	ps.pods = append(ps.pods, p)
	return p
}

// stop ends the pod if it still runs.
func (p *pod) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitFor retries check until it succeeds; it fails the test if p exits or
// 30 s pass (a bound for a hung test, not a measure of speed).
func waitFor(t *testing.T, p *pod, what string, check func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) while waiting until it %s: %v", p.name, p.err, what, err)
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s %s: %v", p.name, what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
