package lab

// Kind is the kind of resource a store record holds.
type Kind int

// The kinds of records.
const (
	KindLab Kind = iota + 1
	KindNetwork
	KindHost
)

// Key is a parsed store key: a record of kind Kind, of lab Lab, with id ID
// (empty for a lab).
type Key struct {
	Kind    Kind
	Lab, ID string
}

// String is the store key (the resource name).
func (k Key) String() string {
	switch k.Kind {
	case KindNetwork:
		return NetworkName(k.Lab, k.ID)
	case KindHost:
		return HostName(k.Lab, k.ID)
	default:
		return LabName(k.Lab)
	}
}

// ParseKey parses a store key; ok is false for a key that is not a lab,
// network or host record.
func ParseKey(key string) (Key, bool) {
	if lab, ok := ParseLabName(key); ok {
		return Key{Kind: KindLab, Lab: lab}, true
	}
	if lab, id, ok := ParseChild(key, Networks); ok {
		return Key{Kind: KindNetwork, Lab: lab, ID: id}, true
	}
	if lab, id, ok := ParseChild(key, Hosts); ok {
		return Key{Kind: KindHost, Lab: lab, ID: id}, true
	}
	return Key{}, false
}

// scanPrefix is the store prefix that holds lab's records ("" for every
// lab). It also matches longer lab ids ("labs/a" matches "labs/ab"):
// callers keep the keys whose parsed Lab is lab.
func scanPrefix(lab string) string {
	if lab == "" {
		return labsPrefix
	}
	return LabName(lab)
}

// inLab reports whether key k belongs to lab ("" for every lab).
func inLab(k Key, lab string) bool { return lab == "" || k.Lab == lab }
