package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const baseDir = "kubernetes"

// manifests is the kustomize base built and decoded.
type manifests struct {
	sts      *appsv1.StatefulSet
	services map[string]*corev1.Service
	secrets  map[string]*corev1.Secret // by name (generated: with a hash suffix)
	pdb      *policyv1.PodDisruptionBudget
	netpol   *networkingv1.NetworkPolicy
	// files are what the user wrote to deploy/kubernetes for the Secrets
	// (secretFiles): ca.crt, ca.key, admin.token.
	files map[string][]byte
}

// buildBase builds deploy/kubernetes with kustomize (as kubectl apply -k
// does) after writing the files the README has the user make (the
// CA and the first admin's token), and decodes every
// resource strictly: a field the Kubernetes API does not have fails.
func buildBase(t *testing.T) *manifests {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	entries, err := os.ReadDir(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || secretFiles(t)[e.Name()] != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(baseDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.WriteFile(filepath.Join("/base", e.Name()), b); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range secretFiles(t) {
		if err := fs.WriteFile(filepath.Join("/base", name), b); err != nil {
			t.Fatal(err)
		}
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/base")
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	m := &manifests{services: map[string]*corev1.Service{}, secrets: map[string]*corev1.Secret{}, files: secretFiles(t)}
	for _, r := range res.Resources() {
		j, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		id := r.CurId().String()
		switch gvk := r.GetGvk(); gvk.ApiVersion() + " " + gvk.Kind {
		case "apps/v1 StatefulSet":
			m.sts = decodeOnce(t, id, j, m.sts)
		case "v1 Service":
			m.services[r.GetName()] = decodeOnce(t, id, j, (*corev1.Service)(nil))
		case "v1 Secret":
			m.secrets[r.GetName()] = decodeOnce(t, id, j, (*corev1.Secret)(nil))
		case "policy/v1 PodDisruptionBudget":
			m.pdb = decodeOnce(t, id, j, m.pdb)
		case "networking.k8s.io/v1 NetworkPolicy":
			m.netpol = decodeOnce(t, id, j, m.netpol)
		default:
			t.Fatalf("unexpected resource %s: this test decodes and checks each kind the base has", id)
		}
	}
	if m.sts == nil || len(m.secrets) != 1 || m.pdb == nil || m.netpol == nil || len(m.services) != 2 {
		t.Fatalf("the base lacks resources: %+v", m)
	}
	return m
}

// decodeOnce decodes j strictly into a new T; prev must be nil (one
// resource of each kind).
func decodeOnce[T any](t *testing.T, id string, j []byte, prev *T) *T {
	t.Helper()
	if prev != nil {
		t.Fatalf("%s: a second resource of this kind", id)
	}
	var v T
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s does not decode strictly into %T: %v", id, v, err)
	}
	return &v
}

// TestKubernetesBase checks what ties the base's resources together: a
// mistake in any of them deploys without complaint and fails later.
func TestKubernetesBase(t *testing.T) {
	m := buildBase(t)
	sts := m.sts
	pod := sts.Spec.Template
	labels := pod.Labels
	matches := func(what string, sel map[string]string) {
		t.Helper()
		if len(sel) == 0 {
			t.Errorf("%s selects nothing", what)
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s selects %s=%s; the pods have %v", what, k, v, labels)
			}
		}
	}
	matches("the StatefulSet", sts.Spec.Selector.MatchLabels)
	matches("the PodDisruptionBudget", m.pdb.Spec.Selector.MatchLabels)
	matches("the NetworkPolicy", m.netpol.Spec.PodSelector.MatchLabels)

	peers := m.services[sts.Spec.ServiceName]
	if peers == nil {
		t.Fatalf("serviceName %q is not a Service of the base", sts.Spec.ServiceName)
	}
	if peers.Spec.ClusterIP != corev1.ClusterIPNone || !peers.Spec.PublishNotReadyAddresses {
		t.Errorf("%s: want headless (clusterIP None) with publishNotReadyAddresses", peers.Name)
	}
	matches("the headless Service", peers.Spec.Selector)
	if sts.Spec.PodManagementPolicy != appsv1.OrderedReadyPodManagement {
		t.Errorf("podManagementPolicy %q: pods started together may each find no other to join", sts.Spec.PodManagementPolicy)
	}

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want labd alone", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]corev1.ContainerPort{}
	for _, p := range c.Ports {
		ports[p.Name] = p
	}
	for _, s := range m.services {
		matches("Service "+s.Name, s.Spec.Selector)
		for _, sp := range s.Spec.Ports {
			cp, ok := ports[sp.TargetPort.StrVal]
			if !ok || cp.Protocol != sp.Protocol {
				t.Errorf("Service %s port %s targets %q/%s, not a container port", s.Name, sp.Name, sp.TargetPort.String(), sp.Protocol)
			}
		}
	}
	api := m.services["labd"]
	if api == nil || len(api.Spec.Ports) != 1 || api.Spec.Ports[0].TargetPort.StrVal != "api" {
		t.Errorf("the labd Service must expose the API port: %+v", api)
	}

	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	// Every probe asks grpc health on the API port, with labctl health
	// (the kubelet's grpc probe has no TLS): on the pod's loopback, which
	// the certificate names, verified against DATA/ca.crt.
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.Exec == nil || len(p.Exec.Command) < 2 || p.Exec.Command[0] != "labctl" || p.Exec.Command[len(p.Exec.Command)-1] != "health" {
			t.Errorf("%s probe: want exec labctl ... health: %+v", name, p)
		} else if p.TimeoutSeconds < 2 {
			t.Errorf("%s probe: timeoutSeconds %d: labctl needs longer than the kubelet's default second", name, p.TimeoutSeconds)
		}
	}
	if h, port, err := net.SplitHostPort(env["LABCTL_SERVER"]); err != nil || h != "127.0.0.1" || port != fmt.Sprint(ports["api"].ContainerPort) {
		t.Errorf("LABCTL_SERVER %q: the probes' labctl must ask the pod's API on loopback, port %d", env["LABCTL_SERVER"], ports["api"].ContainerPort)
	}

	// The API serves TLS only, its certificate naming the labd Service
	// as clients in the cluster call it.
	if env["LABD_TLS"] != "true" {
		t.Errorf("LABD_TLS %q: want true", env["LABD_TLS"])
	}
	sans := strings.Split(env["LABD_TLS_SAN"], ",")
	for _, want := range []string{api.Name, api.Name + ".$(POD_NAMESPACE)", api.Name + ".$(POD_NAMESPACE).svc", api.Name + ".$(POD_NAMESPACE).svc.cluster.local"} {
		if !slices.Contains(sans, want) {
			t.Errorf("LABD_TLS_SAN %q lacks %s", env["LABD_TLS_SAN"], want)
		}
	}
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAMESPACE" }); i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != "metadata.namespace" ||
		i > slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "LABD_TLS_SAN" }) {
		t.Errorf("POD_NAMESPACE: want the downward API's metadata.namespace, before LABD_TLS_SAN uses it")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources: want cpu and memory requests and a memory limit: %+v", c.Resources)
	}
	if pod.Spec.TerminationGracePeriodSeconds == nil || *pod.Spec.TerminationGracePeriodSeconds < 15 {
		t.Errorf("terminationGracePeriodSeconds must cover labd's shutdown (leave, 10 s of calls in flight, flush)")
	}
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("pods must run as non-root")
	}

	// The NetworkPolicy lets labd pods, and only them, reach gossip and
	// the overlay.
	peerOnly := map[string]bool{}
	for _, rule := range m.netpol.Spec.Ingress {
		fromLabd := len(rule.From) == 1 && rule.From[0].PodSelector != nil && rule.From[0].NamespaceSelector == nil
		if fromLabd {
			matches("the NetworkPolicy's peer rule", rule.From[0].PodSelector.MatchLabels)
		}
		for _, p := range rule.Ports {
			key := fmt.Sprintf("%s/%s", p.Port.String(), *p.Protocol)
			if prev, seen := peerOnly[key]; seen && prev != fromLabd {
				t.Errorf("NetworkPolicy: %s in two rules", key)
			}
			peerOnly[key] = fromLabd
		}
	}
	for _, name := range []string{"gossip", "gossip-udp", "overlay", "raft"} {
		key := fmt.Sprintf("%d/%s", ports[name].ContainerPort, ports[name].Protocol)
		if fromLabd, ok := peerOnly[key]; !ok || !fromLabd {
			t.Errorf("NetworkPolicy: %s (%s) must be open to labd pods only", name, key)
		}
	}
	if fromLabd, ok := peerOnly[fmt.Sprintf("%d/TCP", ports["api"].ContainerPort)]; !ok || fromLabd {
		t.Errorf("NetworkPolicy: the API must be reachable by clients (and by labd, which forwards live calls)")
	}

	// No cluster key shared by every pod: gossip keys come from the
	// control plane, and members enrol with invites.
	for _, k := range []string{"LABD_CLUSTER_KEY", "LABD_CLUSTER_KEY_FILE", "LABD_INSECURE"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s is set: the pods share no cluster key (and never run insecure)", k)
		}
	}
	// The data directory is a persistent volume; the CA and the first
	// admin's token come from the generated Secret.
	claims := map[string]bool{}
	for _, vct := range sts.Spec.VolumeClaimTemplates {
		claims[vct.Name] = true
	}
	for _, f := range []struct{ env, file string }{
		{"LABD_CA_CERT", "ca.crt"},
		{"LABD_CA_KEY", "ca.key"},
		{"LABD_ADMIN_TOKEN_FILE", "admin.token"},
	} {
		secret, key := secretAt(t, m, env[f.env])
		if secret == nil || !bytes.Equal(secret.Data[key], m.files[f.file]) {
			t.Errorf("%s %q is not the file %s the README makes, from a Secret of the base", f.env, env[f.env], f.file)
		}
	}
}

// secretAt is the Secret, and its key, that the container sees at path:
// a mount of a secret or projected volume, the item at path's base name.
func secretAt(t *testing.T, m *manifests, path string) (*corev1.Secret, string) {
	t.Helper()
	spec := m.sts.Spec.Template.Spec
	dir, file := filepath.Split(path)
	for _, vm := range spec.Containers[0].VolumeMounts {
		if vm.MountPath != filepath.Clean(dir) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			for _, src := range secretSources(v) {
				for _, it := range src.items {
					if it.Path == file {
						return m.secrets[src.name], it.Key
					}
				}
			}
		}
	}
	return nil, ""
}

// secretSource is a Secret a volume shows, and which of its keys.
type secretSource struct {
	name  string
	items []corev1.KeyToPath
}

// secretSources are the Secrets volume v shows: a secret volume's, or a
// projected volume's secret sources.
func secretSources(v corev1.Volume) []secretSource {
	var out []secretSource
	if v.Secret != nil {
		out = append(out, secretSource{v.Secret.SecretName, v.Secret.Items})
	}
	if v.Projected != nil {
		for _, src := range v.Projected.Sources {
			if src.Secret != nil {
				out = append(out, secretSource{src.Secret.Name, src.Secret.Items})
			}
		}
	}
	return out
}
