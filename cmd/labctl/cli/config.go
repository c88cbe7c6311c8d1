package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// labctl's config file is kubeconfig's idea, smaller: named contexts, each
// a server, the cluster CA that server's certificate must chain to, and a
// bearer token; one of them is current. It holds tokens, so it is written
// with mode 0600, atomically (a temporary file renamed over it), and a file
// that others may read gets a warning.

// Environment variables that place the config file (XDG Base Directory).
const (
	envConfigHome = "XDG_CONFIG_HOME"
	envHome       = "HOME"
)

// Config is the config file.
type Config struct {
	CurrentContext string           `yaml:"current-context"`
	Contexts       []*ConfigContext `yaml:"contexts"`
}

// ConfigContext is one server with its CA and credential.
type ConfigContext struct {
	Name   string `yaml:"name"`
	Server string `yaml:"server"`
	// CA is the cluster CA certificate, PEM, inline.
	CA    string `yaml:"ca,omitempty"`
	Token string `yaml:"token,omitempty"`
}

// configPath is $XDG_CONFIG_HOME/labctl/config, else
// $HOME/.config/labctl/config; "" when neither variable is set.
func configPath(getenv func(string) string) string {
	if d := getenv(envConfigHome); d != "" {
		return filepath.Join(d, "labctl", "config")
	}
	if h := getenv(envHome); h != "" {
		return filepath.Join(h, ".config", "labctl", "config")
	}
	return ""
}

// Context is the context called name, or nil.
func (c *Config) Context(name string) *ConfigContext {
	for _, x := range c.Contexts {
		if x.Name == name {
			return x
		}
	}
	return nil
}

// Current is the current context, or nil.
func (c *Config) Current() *ConfigContext {
	if c.CurrentContext == "" {
		return nil
	}
	return c.Context(c.CurrentContext)
}

// Put adds ctx, replacing a context of the same name.
func (c *Config) Put(ctx *ConfigContext) {
	for i, x := range c.Contexts {
		if x.Name == ctx.Name {
			c.Contexts[i] = ctx
			return
		}
	}
	c.Contexts = append(c.Contexts, ctx)
}

// Delete removes the context called name (and makes no context current
// if it was); it reports whether there was one.
func (c *Config) Delete(name string) bool {
	for i, x := range c.Contexts {
		if x.Name == name {
			c.Contexts = append(c.Contexts[:i], c.Contexts[i+1:]...)
			if c.CurrentContext == name {
				c.CurrentContext = ""
			}
			return true
		}
	}
	return false
}

// readConfig reads the config file at path; a missing file is an empty
// config. loose is true when the file's mode lets others than its owner
// read or write it.
func readConfig(path string) (cfg *Config, loose bool, err error) {
	cfg = &Config{}
	if path == "" {
		return cfg, false, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("config: %w", err)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, false, fmt.Errorf("config: %w", err)
	}
	if err := yaml.Unmarshal(buf.Bytes(), cfg); err != nil {
		return nil, false, fmt.Errorf("config %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, x := range cfg.Contexts {
		switch {
		case x == nil || x.Name == "":
			return nil, false, fmt.Errorf("config %s: contexts[%d] has no name", path, i)
		case seen[x.Name]:
			return nil, false, fmt.Errorf("config %s: context %q is there twice", path, x.Name)
		}
		seen[x.Name] = true
	}
	return cfg, st.Mode().Perm()&0o077 != 0, nil
}

// writeConfig writes cfg to path with mode 0600: a temporary file in the
// same directory, synced, then renamed over path, so a reader sees the old
// file or the new one, never half of one.
func writeConfig(path string, cfg *Config) error {
	if path == "" {
		return errors.New("config: no place for it: set HOME or " + envConfigHome)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	b := buf.Bytes()
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := writeSecretFile(path, string(b)); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// config is the config file, read once per run; a loose mode is warned
// about once, on stderr.
func (a *app) config() (*Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	path := configPath(a.getenv)
	cfg, loose, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	if loose {
		fmt.Fprintf(a.stderr, "warning: %s holds tokens and others may read it: run chmod 600 %s\n", path, path)
	}
	a.cfg = cfg
	return cfg, nil
}

// saveConfig writes the config read by config back, changed.
func (a *app) saveConfig() error {
	if a.cfg == nil {
		return errors.New("config: not read")
	}
	return writeConfig(configPath(a.getenv), a.cfg)
}
