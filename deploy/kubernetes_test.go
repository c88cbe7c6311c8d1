package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const baseDir = "kubernetes"

// testKey stands for the cluster key a user writes to kubernetes/cluster-key.
const testKey = "test-cluster-key-not-for-use"

// manifests is the kustomize base built and decoded.
type manifests struct {
	sts      *appsv1.StatefulSet
	services map[string]*corev1.Service
	secret   *corev1.Secret
	pdb      *policyv1.PodDisruptionBudget
	netpol   *networkingv1.NetworkPolicy
}

// buildBase builds deploy/kubernetes with kustomize (as kubectl apply -k
// does) after writing the cluster key the base expects, and decodes every
// resource strictly: a field the Kubernetes API does not have fails.
func buildBase(t *testing.T) *manifests {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	entries, err := os.ReadDir(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || e.Name() == "cluster-key" {
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
	if err := fs.WriteFile("/base/cluster-key", []byte(testKey+"\n")); err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/base")
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	m := &manifests{services: map[string]*corev1.Service{}}
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
			m.secret = decodeOnce(t, id, j, m.secret)
		case "policy/v1 PodDisruptionBudget":
			m.pdb = decodeOnce(t, id, j, m.pdb)
		case "networking.k8s.io/v1 NetworkPolicy":
			m.netpol = decodeOnce(t, id, j, m.netpol)
		default:
			t.Fatalf("unexpected resource %s: this test decodes and checks each kind the base has", id)
		}
	}
	if m.sts == nil || m.secret == nil || m.pdb == nil || m.netpol == nil || len(m.services) != 2 {
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

	// Every probe asks grpc health on the API port.
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.GRPC == nil || p.GRPC.Port != ports["api"].ContainerPort {
			t.Errorf("%s probe: want grpc on the API port %d: %+v", name, ports["api"].ContainerPort, p)
		}
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

	// The data directory is a persistent volume; the key file comes from
	// the generated Secret.
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	claims := map[string]bool{}
	for _, vct := range sts.Spec.VolumeClaimTemplates {
		claims[vct.Name] = true
	}
	secretVolumes := map[string]*corev1.SecretVolumeSource{}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			secretVolumes[v.Name] = v.Secret
		}
	}
	mounted := map[string]string{} // mount path: volume
	for _, vm := range c.VolumeMounts {
		mounted[vm.MountPath] = vm.Name
	}
	if !claims[mounted[env["LABD_DATA"]]] {
		t.Errorf("LABD_DATA %q is not on a volume claim template", env["LABD_DATA"])
	}
	keyDir, keyFile := filepath.Split(env["LABD_CLUSTER_KEY_FILE"])
	sv := secretVolumes[mounted[filepath.Clean(keyDir)]]
	if sv == nil || sv.SecretName != m.secret.Name {
		t.Fatalf("LABD_CLUSTER_KEY_FILE %q is not in a volume of Secret %s", env["LABD_CLUSTER_KEY_FILE"], m.secret.Name)
	}
	found := false
	for _, it := range sv.Items {
		if it.Path == keyFile && string(m.secret.Data[it.Key]) == testKey+"\n" {
			found = true
		}
	}
	if !found {
		t.Errorf("the key file %s is not the cluster key of Secret %s", keyFile, m.secret.Name)
	}
}
