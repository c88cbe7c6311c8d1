package cli

import (
	"testing"
	"time"
)

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<invalid>"},
		{-time.Second, "0s"},
		{0, "0s"},
		{119 * time.Second, "119s"},
		{2*time.Minute + 5*time.Second, "2m5s"},
		{5 * time.Minute, "5m"},
		{10*time.Minute + 30*time.Second, "10m"},
		{3*time.Hour + 20*time.Minute, "3h20m"},
		{7 * time.Hour, "7h"},
		{26 * time.Hour, "26h"},
		{50 * time.Hour, "2d2h"},
		{72 * time.Hour, "3d"},
		{400 * 24 * time.Hour, "400d"},
		{(3*365 + 10) * 24 * time.Hour, "3y10d"},
		{10 * 365 * 24 * time.Hour, "10y"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestLossFormat(t *testing.T) {
	// iputils: printf("%g%%", (float)(lost*100.0/transmitted)).
	for _, tc := range []struct {
		tx, rx int64
		want   string
	}{
		{3, 3, "0"},
		{3, 1, "66.6667"},
		{3, 2, "33.3333"},
		{4, 1, "75"},
		{2, 0, "100"},
		{7, 6, "14.2857"},
		{1000000, 999999, "0.0001"},
		{10000000, 9999999, "1e-05"},
	} {
		loss := float32(float64(tc.tx-tc.rx) * 100 / float64(tc.tx))
		if got := cG(float64(loss)); got != tc.want {
			t.Errorf("loss %d/%d = %q, want %q", tc.rx, tc.tx, got, tc.want)
		}
	}
}

func TestSeqWindow(t *testing.T) {
	var w seqWindow
	steps := []struct {
		seq  uint32
		want bool
	}{
		{1, false}, {2, false}, {2, true}, {1, true}, {5, false}, {3, false}, {3, true},
		// 65536 later the same slot is reused: not a duplicate.
		{1 + 1<<16, false}, {1 + 1<<16, true},
		// Still in the window.
		{2, true},
		// Too old to tell (its slot is 1+1<<16's).
		{1, false},
	}
	for i, s := range steps {
		if got := w.seen(s.seq); got != s.want {
			t.Errorf("step %d: seen(%d) = %t, want %t", i, s.seq, got, s.want)
		}
	}
}

func TestKindID(t *testing.T) {
	for name, want := range map[string]string{
		"labs/demo":               "lab/demo",
		"labs/demo/networks/lan1": "network/lan1",
		"labs/demo/hosts/h1":      "host/h1",
		"nodes/n1":                "node/n1",
		"labs/demo/things/x":      "labs/demo/things/x",
		"weird":                   "weird",
	} {
		if got := kindID(name); got != want {
			t.Errorf("kindID(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{in: "1000", want: 1000},
		{in: "10M", want: 10_000_000},
		{in: "10MB", want: 10_000_000},
		{in: "1G", want: 1_000_000_000},
		{in: "1.5G", want: 1_500_000_000},
		{in: "64k", want: 64_000},
		{in: "64K", want: 64_000},
		{in: "100MiB", want: 100 << 20},
		{in: "64Ki", want: 64 << 10},
		{in: "1GiB", want: 1 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "0.5KiB", want: 512},
		{in: "0", want: 0},
		{in: "", err: true},
		{in: "M", err: true},
		{in: "10mb", err: true},
		{in: "10iB", err: true},
		{in: "10BB", err: true},
		{in: "-1M", err: true},
		{in: "1.0001K", err: true},
		{in: "NaN", err: true},
		{in: "1e30", err: true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %t", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestFormatBitRate(t *testing.T) {
	for _, tc := range []struct {
		bps  float64
		want string
	}{
		{0, "0 bit/s"},
		{168, "168 bit/s"},
		{9870, "9.87 kbit/s"},
		{666_666_667, "667 Mbit/s"},
		{999_600_000, "1.00 Gbit/s"},
		{1e9, "1.00 Gbit/s"},
		{12.34e9, "12.3 Gbit/s"},
		{0.5, "0.500 bit/s"},
	} {
		if got := formatBitRate(tc.bps); got != tc.want {
			t.Errorf("formatBitRate(%g) = %q, want %q", tc.bps, got, tc.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		prec int
		want string
	}{
		{512, 1, "512 B"},
		{123_400_000, 1, "123.4 MB"},
		{1_250_000_000, 2, "1.25 GB"},
		{999_960_000, 1, "1.0 GB"},
		{1_500, 2, "1.50 kB"},
	} {
		if got := formatBytes(tc.n, tc.prec); got != tc.want {
			t.Errorf("formatBytes(%d, %d) = %q, want %q", tc.n, tc.prec, got, tc.want)
		}
	}
}
