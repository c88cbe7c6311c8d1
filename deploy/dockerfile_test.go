package deploy

import (
	"bytes"
	"encoding/json"
	"go/version"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const dockerfile = "Dockerfile"

// parseDockerfile parses deploy/Dockerfile with BuildKit's own parser and
// runs BuildKit's lint rules (those of docker build --check that need no
// base image), experimental ones included; every warning is an error.
func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s:%d: %s", dockerfile, w.Location.Start.Line, w.Short)
	}
	lint := linter.New(&linter.Config{ExperimentalAll: true, Warn: func(rule, _, url, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		t.Errorf("%s:%d: %s: %s (%s)", dockerfile, line, rule, msg, url)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	if len(stages) == 0 {
		t.Fatalf("%s: no stages", dockerfile)
	}
	return stages
}

// commands returns the stage's instructions of type T.
func commands[T any](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// imageEntrypoint is the final stage's ENTRYPOINT, exec form.
func imageEntrypoint(t *testing.T) []string {
	t.Helper()
	stages := parseDockerfile(t)
	eps := commands[*instructions.EntrypointCommand](stages[len(stages)-1])
	if len(eps) != 1 || eps[0].PrependShell {
		t.Fatalf("%s: want one ENTRYPOINT in exec form in the final stage", dockerfile)
	}
	return eps[0].CmdLine
}

// TestDockerfileLint is the lint the image must pass where no hadolint is
// at hand: BuildKit's rules plus the ones that matter for this image.
func TestDockerfileLint(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	names := map[string]bool{}
	for i, s := range stages {
		// Base images are pinned: a tag or digest, never latest.
		if !names[s.BaseName] {
			ref := s.BaseName
			if at := strings.LastIndex(ref, "@"); at >= 0 {
				if !strings.HasPrefix(ref[at+1:], "sha256:") {
					t.Errorf("FROM %s: bad digest", s.BaseName)
				}
			} else if colon := strings.LastIndex(ref, ":"); colon < strings.LastIndex(ref, "/")+1 {
				t.Errorf("FROM %s: no tag; pin the version", s.BaseName)
			} else if tag := ref[colon+1:]; tag == "latest" {
				t.Errorf("FROM %s: latest is not a version", s.BaseName)
			}
		}
		// COPY --from names an earlier stage.
		for _, c := range commands[*instructions.CopyCommand](s) {
			if c.From != "" && !names[c.From] {
				t.Errorf("stage %d: COPY --from=%s: no earlier stage of that name", i, c.From)
			}
		}
		if s.Name != "" {
			names[s.Name] = true
		}
	}
	if names[final.BaseName] {
		t.Fatalf("the final stage is based on a build stage (%s), not a minimal image", final.BaseName)
	}

	// The Go in the build image can build the module.
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	var built bool
	for _, s := range stages {
		if m := regexp.MustCompile(`^golang:(\d+\.\d+(?:\.\d+)?)`).FindStringSubmatch(s.BaseName); m != nil {
			if version.Compare("go"+m[1], "go"+string(goLine[1])) < 0 {
				t.Errorf("FROM %s: go.mod needs Go %s", s.BaseName, goLine[1])
			}
			// Static binaries: the final image has no C library.
			for _, r := range commands[*instructions.RunCommand](s) {
				line := strings.Join(r.CmdLine, " ")
				if strings.Contains(line, "go build") {
					built = true
					if !strings.Contains(line, "CGO_ENABLED=0") {
						t.Errorf("RUN %s: build with CGO_ENABLED=0 for a static binary", line)
					}
				}
			}
		}
	}
	if !built {
		t.Error("no stage builds with go build in a golang image")
	}

	// Non-root.
	users := commands[*instructions.UserCommand](final)
	if len(users) == 0 {
		t.Error("the final stage has no USER: the image would run as root")
	} else if u := strings.Split(users[len(users)-1].User, ":")[0]; u == "0" || u == "root" {
		t.Errorf("USER %s: run as non-root", users[len(users)-1].User)
	}

	// The binaries the image runs are copied to a directory on the PATH.
	copied := map[string]bool{}
	for _, c := range commands[*instructions.CopyCommand](final) {
		if c.From != "" && c.DestPath == "/usr/local/bin/" {
			for _, src := range c.SourcePaths {
				copied[path.Base(src)] = true
			}
		}
	}
	if ep := imageEntrypoint(t); !copied[ep[0]] {
		t.Errorf("ENTRYPOINT %q: %s is not copied to /usr/local/bin", ep, ep[0])
	}

	// A health check with labctl health.
	hcs := commands[*instructions.HealthCheckCommand](final)
	if len(hcs) != 1 {
		t.Fatalf("want one HEALTHCHECK in the final stage, have %d", len(hcs))
	}
	test := hcs[0].Health.Test
	if len(test) < 3 || test[0] != "CMD" || !copied[test[1]] || test[1] != "labctl" || test[len(test)-1] != "health" {
		t.Errorf("HEALTHCHECK %q: want CMD [labctl ... health] (exec form: the image has no shell)", test)
	}
	if hcs[0].Health.Timeout == 0 || hcs[0].Health.Interval == 0 {
		t.Errorf("HEALTHCHECK: set --interval and --timeout")
	}

	// EXPOSE: labd's default ports, gossip on both protocols.
	api, gossip, overlay := labdDefaultPorts(t)
	var exposed []string
	for _, e := range commands[*instructions.ExposeCommand](final) {
		exposed = append(exposed, e.Ports...)
	}
	slices.Sort(exposed)
	want := []string{api + "/tcp", gossip + "/tcp", gossip + "/udp", overlay + "/udp"}
	slices.Sort(want)
	if !slices.Equal(exposed, want) {
		t.Errorf("EXPOSE %v, want labd's ports %v", exposed, want)
	}

	// The health check reaches the API the image's environment sets, and
	// verifies its TLS against the CA in labd's data directory (labctl
	// reads LABD_DATA), a volume.
	env := imageEnv(final)
	var volumes []string
	for _, v := range commands[*instructions.VolumeCommand](final) {
		volumes = append(volumes, v.Volumes...)
	}
	if env["LABD_DATA"] == "" || !slices.Contains(volumes, env["LABD_DATA"]) {
		t.Errorf("ENV LABD_DATA=%q, VOLUME %v: labd's data directory, a volume, set for labd and for labctl health", env["LABD_DATA"], volumes)
	}
	_, apiPort, _ := strings.Cut(env["LABD_API"], ":")
	if !strings.HasPrefix(env["LABD_API"], "0.0.0.0:") || apiPort != api || env["LABCTL_SERVER"] != "127.0.0.1:"+api {
		t.Errorf("ENV LABD_API=%s LABCTL_SERVER=%s: the API on every address, port %s, and labctl health asking it on loopback", env["LABD_API"], env["LABCTL_SERVER"], api)
	}
}

// imageEnv is the final stage's ENV.
func imageEnv(s instructions.Stage) map[string]string {
	env := map[string]string{}
	for _, e := range commands[*instructions.EnvCommand](s) {
		for _, kv := range e.Env {
			env[kv.Key] = kv.Value
		}
	}
	return env
}

// TestDockerignore: the ignore file leaves in the build context every file
// the go build in the image needs (what go list says labd and labctl are
// built from).
func TestDockerignore(t *testing.T) {
	f, err := os.Open(dockerfile + ".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,Standard,GoFiles,EmbedFiles,SFiles,Module", "./cmd/labd", "./cmd/labctl")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			Dir                         string
			Standard                    bool
			GoFiles, EmbedFiles, SFiles []string
			Module                      *struct{ Main bool }
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Standard || p.Module == nil || !p.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range slices.Concat(p.GoFiles, p.EmbedFiles, p.SFiles) {
			needed = append(needed, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %v", needed)
	}
	for _, f := range needed {
		excluded, err := pm.MatchesOrParentMatches(f)
		if err != nil {
			t.Fatal(err)
		}
		if excluded {
			t.Errorf("%s.dockerignore leaves %s out of the build context; the image's go build needs it", dockerfile, f)
		}
	}
}
